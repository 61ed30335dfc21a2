"""The text backends: which exist, which can run here, which to run, and how to open one.

Each backend says what it needs (a pip extra, weights, a GPU, a modality) so the
panel and ``label --backend`` can say plainly why one cannot run, and ``auto`` can
pick the most accurate one that is installed and has its weights.

The panel, the pipeline, batch and the command line ask
:func:`~napari_textseg.engine.text.plan.plan_text_run`, which asks :func:`resolve_backend`
here; :func:`resolve_backend` turns the user's choice (``auto``, clicks or boxes given, the
loaded model's family, the modality) into one backend, and :func:`open_text_backend`
builds it, whichever it is.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from napari_textseg.core.errors import InputError

__all__ = [
    "AUTO",
    "BACKENDS",
    "BackendInfo",
    "choose_backend",
    "get_backend_info",
    "not_installed",
    "open_text_backend",
    "resolve_backend",
    "why_unavailable",
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
        BackendInfo(
            "voxtell",
            "VoxTell (trained 3-D, free text)",
            ("CT", "MR", "PET"),
            "free text; the embedding bank's prompts work offline",
            "voxtell",
            "voxtell",
            "voxtell_v1.1",
        ),
        BackendInfo(
            "medical-sam3",
            "Medical-SAM3 3-D (trained, GPU)",
            ("CT", "MR", "PET", "US"),
            "short concept phrases (organ and lesion names)",
            "sam3",
            "medical-sam3",
            "medical_sam3_3d",
            needs_gpu=True,
        ),
        BackendInfo(
            "clip-sam",
            "CLIP + SAM (training-free)",
            (),
            "anything CLIP can name; unreliable on medical images without a click",
        ),
        # Never chosen by auto (clip-sam, before it, always can run): with a SAM3 model, or by name.
        BackendInfo(
            "sam3-slices",
            "SAM3 per slice (reads the text)",
            (),
            "short concept phrases, slice by slice, linked into 3-D",
            "sam3",
            None,
            "sam3",
        ),
    )
}


def get_backend_info(backend: str) -> BackendInfo:
    """The backend called ``backend``, or an error listing the known ones."""
    try:
        return BACKENDS[backend]
    except KeyError:
        raise InputError(
            f"unknown text backend {backend!r}; choose one of {AUTO}, {', '.join(BACKENDS)}"
        ) from None


def not_installed(backend: str) -> str | None:
    """How to install ``backend``'s package when it is missing (checked without importing it)."""
    info = get_backend_info(backend)
    if info.module and importlib.util.find_spec(info.module) is None:
        how = f'"napari-textseg[{info.extra}]"' if info.extra else info.module
        return f"{info.title} is not installed: pip install {how}"
    return None


def why_unavailable(
    backend: str,
    modality: str,
    device_type: str,
    *,
    allow_cpu: bool = False,
    weights_present: bool | None = None,
) -> str | None:
    """Why ``backend`` cannot label this volume here, or None when it can.

    ``weights_present`` overrides the cache check (a local file or folder was given).
    """
    from napari_textseg.models.registry import get_card
    from napari_textseg.models.store import cached_path

    info = get_backend_info(backend)
    if info.modalities and modality not in info.modalities:
        return f"{info.title} labels {', '.join(info.modalities)} volumes; this one is {modality}"
    missing = not_installed(backend)
    if missing:
        return missing
    if info.card is not None:
        present = (
            cached_path(get_card(info.card)).is_file()
            if weights_present is None
            else weights_present
        )
        if not present:
            return f"{info.title}: its weights ({info.card}) are not downloaded"
    if info.needs_gpu and device_type != "cuda" and not allow_cpu:
        return (
            f"{info.title} needs a CUDA GPU: on a CPU a four-slice clip takes minutes "
            "(allow it explicitly to try anyway)"
        )
    return None


def choose_backend(
    backend: str,
    modality: str,
    device_type: str,
    *,
    allow_cpu: bool = False,
    weights_present: bool | None = None,
) -> str:
    """``backend`` itself when it can run (else a clear error), or for ``auto`` the best that can.

    ``weights_present`` (a local file or folder was given) applies to a named backend only.
    """
    if backend == AUTO:
        for candidate in BACKENDS:
            if why_unavailable(candidate, modality, device_type, allow_cpu=allow_cpu) is None:
                return candidate
        return "clip-sam"
    reason = why_unavailable(
        backend, modality, device_type, allow_cpu=allow_cpu, weights_present=weights_present
    )
    if reason is not None:
        raise InputError(reason)
    return backend


def resolve_backend(
    choice: str,
    *,
    modality: str,
    device_type: str,
    prompts_given: bool = False,
    model_named: bool = False,
    model_family: str | None = None,
    allow_cpu: bool = False,
    weights_present: bool | None = None,
) -> str:
    """The one backend to run for the user's ``choice`` (a backend id or ``auto``).

    With ``auto``, clicks or boxes (``prompts_given``) or a segmentation model the user
    named for this run (``model_named``, the command line's ``--model``) mean CLIP + SAM:
    the prompt says where, the text what. A SAM3 model (``model_family``) reads the text
    itself, so CLIP + SAM with SAM3 is ``sam3-slices``. Otherwise :func:`choose_backend`
    decides (or says why the named backend cannot run).
    """
    if choice == AUTO and (prompts_given or model_named):
        choice = "clip-sam"
    if choice == "clip-sam" and model_family == "sam3":
        choice = "sam3-slices"
    if choice == "sam3-slices" and prompts_given:
        raise InputError(
            "SAM3 takes the text itself: drop the clicks or boxes, or use a SAM/SAM2 model "
            "for text + click"
        )
    if choice in ("voxtell", "medical-sam3") and prompts_given:
        raise InputError(
            f"{get_backend_info(choice).title} takes the text itself: drop the clicks, or use "
            "clip-sam for text + click (and correct any organ with clicks afterwards)"
        )
    if choice == "sam3-slices" and model_family == "sam3":
        return choice  # the model is loaded already: nothing else to check
    chosen = choose_backend(
        choice, modality, device_type, allow_cpu=allow_cpu, weights_present=weights_present
    )
    return "sam3-slices" if chosen == "clip-sam" and model_family == "sam3" else chosen


def open_text_backend(
    backend: str,
    volume,
    *,
    targets=(),
    device=None,
    sam=None,
    session=None,
    clip=None,
    clicks: dict | None = None,
    weights: str | None = None,
    report=None,
    online=None,
    embedding=None,
):
    """Build the text backend ``backend`` (resolved, not ``auto``) for ``volume`` (a TextVolume).

    - ``clip-sam``: ``session`` (a SegmentationSession on the volume: pass the clicks'
      one to share its embedding cache) or ``sam`` (a LoadedModel) segments; ``clip`` (a
      LoadedModel) locates the ``targets`` that have no click in ``clicks``.
    - ``sam3-slices``: ``sam`` when it is a SAM3 model, else SAM3 from ``weights`` or
      its cached download.
    - ``voxtell`` / ``medical-sam3``: their trained 3-D models on ``device``, from
      ``weights`` or the cached download. Nothing is downloaded here, except VoxTell's
      text encoder for free text when ``online()`` (by default: the hub answers).
    """
    clicks = clicks or {}
    if backend == "clip-sam":
        return _open_clip_sam(volume, targets, sam, session, clip, clicks, embedding)
    if backend == "sam3-slices":
        from napari_textseg.core.intensity import normalize_for_model
        from napari_textseg.engine.text.sam3_slices import Sam3Labeller
        from napari_textseg.models.loader import load_model

        if sam is None or sam.card.family != "sam3":
            sam = load_model("sam3", weights, device=getattr(device, "type", device))
        frames = normalize_for_model(volume.data, volume.modality, "soft_tissue")
        return Sam3Labeller(sam.model, frames, sam.device)
    return _open_trained(backend, volume, device, weights, report, online)


def _open_clip_sam(volume, targets, sam, session, clip, clicks, embedding=None):
    from napari_textseg.engine.interactive.session_factory import open_session, open_slice_model
    from napari_textseg.engine.text.clip_dense import DenseClip
    from napari_textseg.engine.text.clip_sam import TextLabeller
    from napari_textseg.engine.text.text_encoder import TextEncoder

    dense = encoder = None
    if any(t.name not in clicks for t in targets):
        if clip is None:
            raise InputError("targets without a click need a CLIP model")
        if clip.card.family != "clip":
            raise InputError(
                f"{clip.card.title} is not a CLIP model; text search needs an open_clip checkpoint"
            )
        dense = DenseClip(clip.model)
        encoder = TextEncoder(clip.model, str(clip.checkpoint), clip.card.arch["model_name"])
    if session is None:
        if sam is None:
            raise InputError(
                "the clip-sam backend needs a SAM/SAM2 model (--model ID or --checkpoint FILE)"
            )
        session = open_session(
            volume.data,
            volume.spacing,
            volume.modality,
            open_slice_model(sam, embedding),
            embedding,
            volume.name,
        )
    raw = volume.data if volume.modality == "CT" else None  # the HU priors are CT-only
    return TextLabeller(session, raw=raw, clip=dense, encoder=encoder, clicks=clicks)


def _open_trained(backend: str, volume, device, weights: str | None, report, online):
    from napari_textseg.models.registry import get_card
    from napari_textseg.models.store import cached_path, hugging_face_reachable

    info = get_backend_info(backend)
    card = get_card(info.card)  # type: ignore[arg-type]
    if backend == "voxtell":
        from napari_textseg.engine.text.voxtell import VoxTellBackend
        from napari_textseg.models.voxtell import cached_voxtell, load_voxtell, local_voxtell

        folder, bank = local_voxtell(weights) if weights is not None else cached_voxtell(card)
        predictor = load_voxtell(folder, device, bank if bank.is_file() else None)
        return VoxTellBackend(
            predictor, volume, report=report, online=online or hugging_face_reachable
        )
    if backend == "medical-sam3":
        from napari_textseg.engine.text.medical_sam3 import MedicalSam3Backend
        from napari_textseg.models.medical_sam3 import load_medical_sam3_video

        model, _ = load_medical_sam3_video(weights or cached_path(card), device)
        return MedicalSam3Backend(model, volume, clip_length=int(card.arch["clip_length"]))
    raise ValueError(f"{backend} is not a text backend")
