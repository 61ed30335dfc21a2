"""Where an image encoder runs: eager PyTorch, or OpenVINO on the CPU (f32 or bf16).

The encoder is the cost of every box model on a CPU (LiteMedSAM: about a second a
slice on 2 cores). OpenVINO runs the same network 3x faster in f32, equal to eager
PyTorch to about 1e-6 in the embedding, and about 7x faster in bf16 (an opt-in: masks
move by a few pixels on a few slices, see docs/models.md).

- The converted model (OpenVINO IR) is cached on disk, keyed by the weights' hash, the
  input size, the precision and the OpenVINO version: converting takes about a minute.
- The precision is always set explicitly: OpenVINO silently picks bf16 on CPUs with AMX.
- Without ``openvino``, or when conversion fails, the encoder runs on PyTorch and
  :attr:`Encoder.note` says why in one line.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:  # torch is imported where it runs: the command line checks flags without it
    import torch

__all__ = [
    "OPENVINO_CACHE_ENV",
    "PRECISIONS",
    "RUNTIMES",
    "Encoder",
    "check_runtime",
    "make_encoder",
    "module_hash",
    "openvino_version",
]

RUNTIMES = ("auto", "torch", "openvino")
PRECISIONS = ("f32", "bf16")
OPENVINO_CACHE_ENV = "NAPARI_TEXTSEG_OPENVINO_CACHE"
_OV_PRECISION = {"f32": "f32", "bf16": "bf16"}


@dataclass
class Encoder:
    """A ``(1, 3, S, S)`` float tensor -> embedding callable, and what it runs on.

    ``tag`` names the runtime and precision in cache keys (embeddings from another
    runtime or precision are other numbers); ``note`` is the one line that says why a
    requested runtime was not used (``None`` when it was).
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    runtime: str
    precision: str
    note: str | None = None

    @property
    def tag(self) -> str:
        return f"{self.runtime}-{self.precision}"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.run(image)


def check_runtime(runtime: str, precision: str) -> None:
    """Refuse a runtime/precision pair before any work (``ValueError``, one line)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if runtime == "torch" and precision != "f32":
        raise ValueError(
            f"precision {precision} needs the OpenVINO runtime (--runtime openvino or auto); "
            "PyTorch runs the encoder in f32 on a CPU"
        )


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or ``None`` when it is not installed (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openvino")
    except PackageNotFoundError:
        return None


def module_hash(module: torch.nn.Module) -> str:
    """A sha256 of a module's parameters and buffers (names, shapes, dtypes and bytes)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def openvino_cache_dir() -> Path:
    """Where converted encoders are kept (``$NAPARI_TEXTSEG_OPENVINO_CACHE`` or the user cache)."""
    root = os.environ.get(OPENVINO_CACHE_ENV)
    return Path(root) if root else Path(platformdirs.user_cache_dir("napari-textseg")) / "openvino"


def _torch_encoder(
    module: torch.nn.Module, device: torch.device, note: str | None = None
) -> Encoder:
    import torch

    from napari_textseg.models.device import autocast

    def run(image: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(device):
            return module(image.to(device))

    return Encoder(run, "torch", "f32", note)


@functools.lru_cache(maxsize=1)
def _core():
    """One OpenVINO Core for the process: a Core destroyed while a model it compiled still
    runs (or another Core compiles) can take the CPU plugin down with it."""
    import openvino as ov

    return ov.Core()


def _converted(
    module: torch.nn.Module, shape: tuple[int, ...], precision: str, folder: Path
) -> Path:
    """The encoder as OpenVINO IR in the disk cache, converted now if missing or unreadable."""
    import openvino as ov
    import torch

    size = f"{shape[-1]}px" if shape[:2] == (1, 3) else "x".join(map(str, shape))
    key = f"{module_hash(module)[:20]}-{size}-{precision}-ov{openvino_version()}"
    target = folder / key
    xml = target / "encoder.xml"
    if xml.is_file() and (target / "encoder.bin").is_file():
        try:
            _core().read_model(str(xml))
            return xml
        except Exception:  # a truncated or damaged entry: convert again
            shutil.rmtree(target, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # the tracer's notes on TinyViT's shape asserts: not the user's
            model = ov.convert_model(module.eval(), example_input=torch.zeros(*shape))
        # f32 weights in the file: the precision is chosen when compiling, not by a lossy save.
        ov.save_model(model, str(staging / "encoder.xml"), compress_to_fp16=False)
        try:
            staging.rename(target)
        except OSError:  # another process converted it first
            if not xml.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return xml


def _openvino_encoder(
    module: torch.nn.Module, shape: tuple[int, ...], precision: str, folder: Path
) -> Encoder:
    import numpy as np
    import torch

    xml = _converted(module, shape, precision, folder)
    config = {
        "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],  # never OpenVINO's own choice
        "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()),
        "PERFORMANCE_HINT": "LATENCY",
    }
    compiled = _core().compile_model(str(xml), "CPU", config)
    # An infer request serves one call at a time: idle ones wait here for the next caller
    # (not in a threading.local: a request destroyed with a Qt pool thread's state crashes).
    idle: queue.SimpleQueue = queue.SimpleQueue()

    def run(image: torch.Tensor) -> torch.Tensor:
        try:
            request = idle.get_nowait()
        except queue.Empty:
            request = compiled.create_infer_request()
        try:
            array = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy())
            output = request.infer([array])[compiled.output(0)]
            return torch.from_numpy(np.array(output, dtype=np.float32))
        finally:
            idle.put(request)

    return Encoder(run, "openvino", precision)


def make_encoder(
    module: torch.nn.Module,
    size: int,
    device: torch.device,
    runtime: str = "auto",
    precision: str = "f32",
    cache: str | os.PathLike | None = None,
    shape: tuple[int, ...] | None = None,
) -> Encoder:
    """The encoder ``module`` (input ``(1, 3, size, size)``, or ``shape``: another network
    with a fixed input, such as nnInteractive's) on ``runtime`` at ``precision``.

    ``auto`` is OpenVINO on a CPU, PyTorch on a GPU. When OpenVINO is missing or its
    conversion fails, the encoder runs on PyTorch and :attr:`Encoder.note` says why.
    """
    check_runtime(runtime, precision)
    if runtime == "torch":
        return _torch_encoder(module, device)
    if (
        device.type != "cpu"
    ):  # OpenVINO is this CPU's runtime; auto means PyTorch on a GPU, silently
        note = (
            None
            if runtime == "auto" and precision == "f32"
            else f"OpenVINO runs on the CPU; the encoder runs on PyTorch on {device}"
        )
        return _torch_encoder(module, device, note)
    if openvino_version() is None:
        return _torch_encoder(
            module,
            device,
            "openvino is not installed (pip install openvino); the encoder runs on PyTorch in f32",
        )
    try:
        return _openvino_encoder(
            module,
            shape or (1, 3, size, size),
            precision,
            Path(cache) if cache else openvino_cache_dir(),
        )
    except Exception as err:  # any conversion or compile failure: the work still runs
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return _torch_encoder(
            module,
            device,
            f"OpenVINO could not run the encoder ({reason[:160]}); it runs on PyTorch in f32",
        )
