"""Keep triton out of napari processes that have no CUDA GPU.

torchvision (needed by SAM) imports ``torch._dynamo``, which imports triton when it is
installed. triton bundles its own LLVM, and loading it after Mesa's software OpenGL
(llvmpipe, which links the system LLVM) is up crashes the process with a segmentation
fault. That is exactly the order in napari: the canvas exists before a plugin widget
imports torch. Without a CUDA GPU triton has no use (it only compiles GPU kernels), so
we make ``import triton`` fail cleanly there; torch handles its absence.
"""

from __future__ import annotations

import sys

__all__ = ["keep_triton_out_without_cuda"]


def keep_triton_out_without_cuda() -> None:
    """Block ``import triton`` for this process when no CUDA GPU is present."""
    if "triton" in sys.modules:
        return
    import torch

    if not torch.cuda.is_available():
        sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError
