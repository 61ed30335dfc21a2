"""Which text backends exist, which can run here, and ``auto``: the best one that can.

Each backend says what it needs (a pip extra, weights, a GPU, a modality) so the
panel and ``label --backend`` can say plainly why one cannot run, and ``auto`` can
pick the most accurate one that is installed and has its weights.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from napari_textseg.core.errors import InputError

__all__ = [
    "AUTO", "BACKENDS", "BackendInfo", "choose_backend", "get_backend_info", "open_trained_backend", "why_unavailable",
]

AUTO = "auto"


@dataclass(frozen=True)
class BackendInfo:
    """What a text backend is and what it needs."""

    id: str
    title: str
    modalities: tuple[str, ...]  # empty: any
    vocabulary: str
    module: str | None = None  # the package its extra installs
    extra: str | None = None
    card: str | None = None  # the model card of its weights
    needs_gpu: bool = False


# Most accurate first: the order auto tries them in.
BACKENDS: dict[str, BackendInfo] = {
    info.id: info
    for info in (
        BackendInfo("voxtell", "VoxTell (trained 3-D, free text)", ("CT", "MR", "PET"),
                    "free text; the embedding bank's prompts work offline", "voxtell", "voxtell", "voxtell_v1.1"),
        BackendInfo("medical-sam3", "Medical-SAM3 3-D (trained, GPU)", ("CT", "MR", "PET", "US"),
                    "short concept phrases (organ and lesion names)", "sam3", "medical-sam3", "medical_sam3_3d",
                    needs_gpu=True),
        BackendInfo("clip-sam", "CLIP + SAM (training-free)", (),
                    "anything CLIP can name; unreliable on medical images without a click"),
    )
}


def get_backend_info(backend: str) -> BackendInfo:
    """The backend called ``backend``, or an error listing the known ones."""
    try:
        return BACKENDS[backend]
    except KeyError:
        raise InputError(f"unknown text backend {backend!r}; choose one of {AUTO}, {', '.join(BACKENDS)}") from None


def why_unavailable(backend: str, modality: str, device_type: str, *, allow_cpu: bool = False,
                    weights_present: bool | None = None) -> str | None:
    """Why ``backend`` cannot label this volume here, or None when it can.

    ``weights_present`` overrides the cache check (a local file or folder was given).
    """
    from napari_textseg.models.registry import get_card
    from napari_textseg.models.store import cached_path

    info = get_backend_info(backend)
    if info.modalities and modality not in info.modalities:
        return f"{info.title} labels {', '.join(info.modalities)} volumes; this one is {modality}"
    if info.module and importlib.util.find_spec(info.module) is None:
        return f'{info.title} is not installed: pip install "napari-textseg[{info.extra}]"'
    if info.card is not None:
        present = cached_path(get_card(info.card)).is_file() if weights_present is None else weights_present
        if not present:
            return f"{info.title}: its weights ({info.card}) are not downloaded"
    if info.needs_gpu and device_type != "cuda" and not allow_cpu:
        return (f"{info.title} needs a CUDA GPU: on a CPU a four-slice clip takes minutes "
                "(allow it explicitly to try anyway)")
    return None


def choose_backend(backend: str, modality: str, device_type: str, *, allow_cpu: bool = False,
                   weights_present: bool | None = None) -> str:
    """``backend`` itself when it can run (else a clear error), or for ``auto`` the best that can.

    ``weights_present`` (a local file or folder was given) applies to a named backend only.
    """
    if backend == AUTO:
        for candidate in BACKENDS:
            if why_unavailable(candidate, modality, device_type, allow_cpu=allow_cpu) is None:
                return candidate
        return "clip-sam"
    reason = why_unavailable(backend, modality, device_type, allow_cpu=allow_cpu, weights_present=weights_present)
    if reason is not None:
        raise InputError(reason)
    return backend


def open_trained_backend(backend: str, volume, device, *, weights: str | None = None,
                         report=None, online=None):
    """Build the VoxTell or Medical-SAM3 backend for ``volume`` on ``device``.

    ``weights`` is a local model folder (VoxTell) or checkpoint file (Medical-SAM3);
    without it the cached download of the backend's card is used. Nothing is
    downloaded here, except VoxTell's text encoder for free text when ``online()`` (by
    default: the hub answers the store's quick probe).
    """
    from pathlib import Path

    from napari_textseg.models.registry import get_card
    from napari_textseg.models.store import cached_path, hugging_face_reachable

    info = get_backend_info(backend)
    card = get_card(info.card)  # type: ignore[arg-type]
    if backend == "voxtell":
        from napari_textseg.engine.text.voxtell import VoxTellBackend, load_voxtell

        if weights is not None:
            folder, bank = Path(weights), Path(weights).parent / "text_embeddings.npz"
        else:
            folder = cached_path(card).parents[1]
            bank = cached_path(card).parents[2] / card.extra_files[1]
        predictor = load_voxtell(folder, device, bank if bank.is_file() else None)
        return VoxTellBackend(predictor, volume, report=report, online=online or hugging_face_reachable)
    if backend == "medical-sam3":
        from napari_textseg.engine.text.medical_sam3 import (
            MedicalSam3Backend,
            load_medical_sam3_video,
        )

        model, _ = load_medical_sam3_video(weights or cached_path(card), device)
        return MedicalSam3Backend(model, volume, clip_length=int(card.arch["clip_length"]))
    raise ValueError(f"{backend} is not a trained backend")
