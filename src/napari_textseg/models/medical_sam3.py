"""The Medical-SAM3 3-D video model, built as its repository's 3-D inference builds it."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from napari_textseg.core.errors import InputError

__all__ = ["INSTALL_HINT", "load_medical_sam3_video"]

INSTALL_HINT = (
    "Medical-SAM3 3-D needs the sam3 package of its own repository (its builder takes "
    "training_mode "
    "and builds at 504 px; PyPI sam3 cannot load the 3-D checkpoint): git clone "
    "https://github.com/AIM-Research-Lab/Medical-SAM3 && pip install --no-deps -e ./Medical-SAM3 "
    "&& "
    'pip install "napari-textseg[medical-sam3]"'
)


def _repository_root() -> Path:
    spec = importlib.util.find_spec("sam3")
    if spec is None or spec.origin is None:
        raise InputError(INSTALL_HINT)
    return Path(spec.origin).resolve().parents[1]


def load_medical_sam3_video(checkpoint: str | Path, device: Any) -> tuple[Any, Any]:
    """The Medical-SAM3 video model, built as its 3-D inference builds it, and the repository's
    ``medical.inference_3d`` module (whose hook exposes mask probabilities)."""
    root = _repository_root()
    reference = root / "medical" / "inference_3d.py"
    from sam3.model_builder import build_sam3_video_model

    if (
        "training_mode" not in inspect.signature(build_sam3_video_model).parameters
        or not reference.is_file()
    ):
        raise InputError(INSTALL_HINT)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import medical.inference_3d as released

    released.install_probability_outputs()
    bpe = released.DEFAULT_BPE if Path(released.DEFAULT_BPE).is_file() else None
    model = build_sam3_video_model(
        checkpoint_path=str(checkpoint),
        load_from_HF=False,
        bpe_path=str(bpe) if bpe else None,
        strict_state_dict_loading=True,
        training_mode=False,
        device=str(device),
        compile=False,
        apply_temporal_disambiguation=True,
        image_size=504,
    )
    model.eval()
    # The released 3-D policy turns the tracker's hot-start delays off.
    model.hotstart_delay = 0
    model.hotstart_unmatch_thresh = 0
    model.hotstart_dup_thresh = 0
    return model, released
