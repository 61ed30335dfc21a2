"""One way to open a slice model and a segmentation session for a loaded model: the encoder's
runtime and
precision, and the disk store of slice embeddings, chosen in one place for the command
line, the text backends and the panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from napari_textseg.engine.interactive.embedding_store import EmbeddingStore
from napari_textseg.engine.interactive.prompts import PromptError
from napari_textseg.engine.interactive.sam2_slices import Sam2SliceModel
from napari_textseg.engine.interactive.sam_slices import SamSliceModel
from napari_textseg.engine.interactive.session import SegmentationSession
from napari_textseg.engine.interactive.slice_model import SliceModel
from napari_textseg.models.encoder_runtime import check_runtime, make_encoder
from napari_textseg.models.loader import LoadedModel

__all__ = ["EmbeddingOptions", "make_slice_model", "open_session", "open_slice_model"]

# With a disk store behind it, memory holds only the slices in use: a slice read back from
# disk costs milliseconds (LiteMedSAM: 4 MB), and a 300-slice CT stays within volume + 2 GiB.
STORE_MEMORY_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class EmbeddingOptions:
    """Where slice embeddings come from: the encoder's ``runtime`` and ``precision``
    (:mod:`napari_textseg.models.encoder_runtime`), and a disk ``store`` (``None``: memory only)."""

    runtime: str = "auto"
    precision: str = "f32"
    store: EmbeddingStore | None = None


def make_slice_model(
    model: torch.nn.Module,
    family: str,
    device: torch.device,
    arch: dict[str, Any] | None = None,
    *,
    runtime: str = "auto",
    precision: str = "f32",
) -> SliceModel:
    """The slice model for a loaded model of ``family`` (``"sam"``, ``"sam2"`` or ``"litemedsam"``);
    a card's ``arch`` may name the preprocessing its weights were trained with (MedSAM's,
    MedSAM2's) and LiteMedSAM's propagated-box margin.

    ``runtime`` and ``precision`` choose where LiteMedSAM's encoder runs
    (:func:`~napari_textseg.models.encoder_runtime.make_encoder`); SAM and SAM2 encoders
    run on PyTorch, and their ``runtime_note`` says so when another runtime was asked for.
    """
    check_runtime(runtime, precision)
    if family == "litemedsam":
        from napari_textseg.engine.interactive.litemedsam_slices import LiteMedSamSliceModel

        size = int(model.prompt_encoder.input_image_size[0])
        encoder = make_encoder(model.image_encoder, size, device, runtime, precision)
        return LiteMedSamSliceModel(
            model, device, box_shift=int((arch or {}).get("box_shift", 3)), encoder=encoder
        )
    if family == "sam":
        built: SliceModel = SamSliceModel(
            model,
            device,
            preprocess=(arch or {}).get("preprocess", "sam"),
            box_shift=int((arch or {}).get("box_shift", 5)),
        )
    elif family == "sam2":
        built = Sam2SliceModel(model, device, preprocess=(arch or {}).get("preprocess", "sam2"))
    else:
        raise ValueError(
            f"point and box prompts need a SAM, SAM2 or LiteMedSAM model, not a {family} model"
        )
    if runtime == "openvino" or precision != "f32":
        built.runtime_note = (
            f"the OpenVINO runtime is LiteMedSAM's; {family.upper()} encoders run on PyTorch "
            f"in {'bf16 autocast' if device.type == 'cuda' else 'f32'} on {device}"
        )
    return built


def open_slice_model(loaded: LoadedModel, options: EmbeddingOptions | None = None) -> SliceModel:
    """The slice model of a loaded SAM, SAM2 or LiteMedSAM, its encoder where ``options`` say."""
    options = options or EmbeddingOptions()
    return make_slice_model(
        loaded.model,
        loaded.card.family,
        loaded.device,
        loaded.card.arch,
        runtime=options.runtime,
        precision=options.precision,
    )


def open_session(
    data: np.ndarray,
    spacing: tuple[float, float, float],
    modality: str,
    slice_model: SliceModel,
    options: EmbeddingOptions | None = None,
    name: str = "",
    **kwargs: Any,
) -> SegmentationSession:
    """A session on ``data`` reading and writing ``options.store``; ``kwargs`` go to
    :class:`~.session.SegmentationSession` (``roi_mm``, ``confine``, ``axis``, ...). A model
    that segments the whole volume at once (nnInteractive) opens its own kind of session."""
    if slice_model.native_3d:
        from napari_textseg.engine.interactive.nninteractive import NnInteractiveSession

        if kwargs.get("roi_mm") or kwargs.get("roi_context") or kwargs.get("confine") is not None:
            raise PromptError(
                "nnInteractive segments the whole volume: turn off the tumour ROI, the box "
                "crop and the confining organ (Propagate tab)"
            )
        return NnInteractiveSession(slice_model, data, name)  # type: ignore[arg-type,return-value]
    store = options.store if options is not None else None
    if store is not None:
        kwargs.setdefault("cache_bytes", STORE_MEMORY_BYTES)
    return SegmentationSession(
        data, spacing, modality, slice_model, store=store, name=name, **kwargs
    )
