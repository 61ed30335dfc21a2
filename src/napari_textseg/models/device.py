"""Device and precision policy: CUDA, then MPS, then CPU; bf16 autocast on CUDA."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["DEVICE_ENV", "autocast", "pick_device"]

DEVICE_ENV = "NAPARI_TEXTSEG_DEVICE"


def pick_device(preference: str | None = None) -> torch.device:
    """The device to run models on.

    ``preference`` (or the ``NAPARI_TEXTSEG_DEVICE`` environment variable) may be
    ``"auto"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``. ``"auto"`` picks CUDA,
    then Apple MPS, then the CPU. Asking for a device that is not there is an error,
    not a silent fallback.
    """
    choice = (preference or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise ValueError(f"unknown device {choice!r}; use auto, cuda, cuda:N, mps or cpu") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was requested but is not available on this machine; use --device cpu")
    if device.type not in ("cuda", "mps", "cpu"):
        raise ValueError(f"unsupported device {choice!r}; use auto, cuda, cuda:N, mps or cpu")
    return device


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision for inference: bf16 autocast on CUDA, full fp32 elsewhere.

    bf16 keeps fp32's range, so SAM's mask logits need no loss scaling; CPU and MPS
    autocast is slower than fp32 for these models, so they run in fp32.
    """
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
