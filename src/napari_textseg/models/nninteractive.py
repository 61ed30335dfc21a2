"""nnInteractive's own inference session, local or on a server: found, checked, opened.

The model folder is what ``MIC-DKFZ/nnInteractive`` publishes (``nnInteractive_v1.0/``):
``plans.json``, ``dataset.json``, ``inference_session_class.json`` (or the newer
``inference_info.json``) and ``fold_0/checkpoint_final.pth``. The weights are licensed
CC BY-NC-SA 4.0: non-commercial use only. Nothing is downloaded here
(:func:`~napari_textseg.models.store.download` does that, after the licence).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import torch

from napari_textseg.models.errors import CheckpointError
from napari_textseg.models.registry import get_card

__all__ = [
    "NNINTERACTIVE_LICENCE",
    "check_nninteractive_folder",
    "connect_nninteractive",
    "network_runtime",
    "nninteractive_folder",
    "open_nninteractive",
]

NNINTERACTIVE_LICENCE = (
    "nnInteractive's weights are licensed CC BY-NC-SA 4.0: non-commercial use only "
    "(https://creativecommons.org/licenses/by-nc-sa/4.0/)"
)
_METADATA = ("inference_info.json", "inference_session_class.json")


def nninteractive_folder(checkpoint: str | Path | None = None) -> Path:
    """The model folder: ``checkpoint`` (a local folder) or the download's, checked."""
    from napari_textseg.models.store import cached_path

    if checkpoint is not None:
        folder = Path(checkpoint).expanduser()
    else:
        card = get_card("nninteractive")
        folder = cached_path(card).parents[1]
        if not (folder / "fold_0" / "checkpoint_final.pth").is_file():
            raise CheckpointError(
                "nnInteractive is not downloaded yet: napari-textseg models download "
                f"nninteractive --accept-license ({NNINTERACTIVE_LICENCE}), or give a local "
                "model folder with --checkpoint FOLDER"
            )
    check_nninteractive_folder(folder)
    return folder


def check_nninteractive_folder(folder: Path) -> None:
    """One line naming what a model folder lacks."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder: give nnInteractive's model folder")
    missing = [name for name in ("plans.json", "dataset.json") if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in _METADATA):
        missing.append(" or ".join(_METADATA))
    folds = sorted(p.name for p in folder.glob("fold_*") if (p / "checkpoint_final.pth").is_file())
    if not folds:
        missing.append("fold_0/checkpoint_final.pth")
    if missing:
        raise CheckpointError(
            f"{folder} is not an nnInteractive model folder: {', '.join(missing)} missing"
        )


def _require_nninteractive() -> None:
    from importlib.util import find_spec

    if find_spec("nnInteractive.inference.inference_session") is None:
        raise CheckpointError(
            'nnInteractive is not installed: pip install "napari-textseg[nninteractive]"'
        )


def open_nninteractive(
    folder: Path,
    device: torch.device,
    *,
    autozoom: bool = True,
    threads: int | None = None,
    runtime: str = "torch",
    precision: str = "f32",
) -> Any:
    """nnInteractive's own ``nnInteractiveInferenceSession`` on ``device``, from ``folder``;
    its network on OpenVINO (``runtime`` ``auto`` or ``openvino`` on a CPU, at
    ``precision``: f32 is 1.7x eager PyTorch for the released architecture, bf16 8.6x; see
    benchmarks/README.md), else PyTorch (:func:`network_runtime` says which, and why)."""
    _require_nninteractive()
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    session = nnInteractiveInferenceSession(
        device=device,
        use_torch_compile=False,
        verbose=False,
        torch_n_threads=threads or torch.get_num_threads(),
        do_autozoom=autozoom,
    )
    session.initialize_from_trained_model_folder(str(folder), 0)
    if runtime != "torch":
        from napari_textseg.models.encoder_runtime import make_encoder

        channels = session.network.encoder.stem.convs[0].conv.in_channels
        patch = tuple(session.configuration_manager.patch_size)
        encoder = make_encoder(
            session.network, 0, device, runtime, precision, shape=(1, channels, *patch)
        )
        session.network = (
            _RuntimeNetwork(encoder) if encoder.runtime != "torch" else session.network
        )
        _NOTES[session] = encoder.note
    return session


class _RuntimeNetwork(torch.nn.Module):
    """nnInteractive's network on another runtime, called as the session calls its own."""

    def __init__(self, encoder: Any):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.float()).to(x.device)


_NOTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # why not the runtime asked


def network_runtime(session: Any) -> str:
    """Where a session's network runs, in words, and why not where it was asked to."""
    network = getattr(session, "network", None)
    if isinstance(network, _RuntimeNetwork):
        return f"OpenVINO {network.encoder.precision}"
    note = _NOTES.get(session)
    return "PyTorch" + (f" ({note})" if note else "")


def connect_nninteractive(url: str, *, autozoom: bool = True, timeout_s: float = 10.0) -> Any:
    """A session on an nnInteractive server (``nninteractive-client``, no torch needed);
    one line when the server cannot be reached or answers with an error."""
    try:
        from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
    except ImportError:
        raise CheckpointError(
            "the nnInteractive client is not installed: pip install nninteractive-client"
        ) from None
    try:
        session = nnInteractiveRemoteInferenceSession(url, connect_timeout=timeout_s)
        session.set_do_autozoom(autozoom)
    except Exception as err:  # httpx errors, a refused lease, a wrong URL: one line
        raise CheckpointError(f"the nnInteractive server at {url} did not answer: {err}") from None
    return session
