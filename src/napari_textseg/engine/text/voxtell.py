"""VoxTell (MIC-DKFZ): free-text 3-D segmentation of CT, MR and PET, as a text backend.

VoxTell's file-based inference reads a NIfTI with nnU-Net's ``NibabelIOWithReorient``:
the grid is reoriented to the closest RAS axes and transposed to (S, A, R) index
order. Our display array is the same grid reoriented to LPS in (S, P, L) order, with
the same closest-axes choice (``nibabel.orientations.io_orientation``), so VoxTell's
input is the display array with y and x reversed, and its output comes back the same
way. ``tests/test_voxtell.py`` checks this against VoxTell's own ``predict_from_files``
on the shared RAS CT and the LPS MR: identical labels on the source grid.

All prompts run in one sliding-window pass, as VoxTell's own inference does: its
prompt decoder attends across the prompts, so one-prompt-at-a-time passes would give
other masks (and cost one pass per organ).
"""

from __future__ import annotations

import difflib
import queue
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import torch

from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import TextTarget
from napari_textseg.engine.text.protocol import OrganResult, Progress, TextVolume, check_text_volume

__all__ = [
    "TEXT_ENCODER",
    "VOXTELL_MODALITIES",
    "VoxTellBackend",
    "from_voxtell_grid",
    "to_voxtell_grid",
]

TEXT_ENCODER = "Qwen/Qwen3-Embedding-4B"  # VoxTell's default free-text encoder (~8 GB)
VOXTELL_MODALITIES = ("CT", "MR", "PET")


def to_voxtell_grid(display: np.ndarray) -> np.ndarray:
    """Display (S, P, L) array -> the (S, A, R) array VoxTell's reader makes from the same file."""
    return np.ascontiguousarray(display[:, ::-1, ::-1])


def from_voxtell_grid(array: np.ndarray) -> np.ndarray:
    """VoxTell (..., S, A, R) output -> display (..., S, P, L); the inverse of
    :func:`to_voxtell_grid`."""
    return np.ascontiguousarray(array[..., ::-1, ::-1])


def _text_encoder_cached(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


class VoxTellBackend:
    """Text targets through VoxTell's predictor on one volume.

    Parameters
    ----------
    predictor
        A ``VoxTellPredictor`` (:func:`napari_textseg.models.voxtell.load_voxtell`).
    volume
        The volume, in display order; CT, MR or PET.
    online
        Whether the text encoder can be downloaded now (the plugin passes the store's
        quick hub probe); offline, only the bank's prompts work.
    report
        Told what is happening that the progress bar does not say (a download).
    """

    id = "voxtell"
    title = "VoxTell (trained 3-D, free text)"

    def __init__(
        self,
        predictor: Any,
        volume: TextVolume,
        *,
        online: Callable[[], bool] = lambda: True,
        report: Callable[[str], None] | None = None,
        text_encoder: str = TEXT_ENCODER,
    ):
        check_text_volume(volume.data, "VoxTell")
        self.predictor = predictor
        self.volume = volume
        self.online = online
        self.report = report or (lambda message: None)
        self.text_encoder = text_encoder

    def vocabulary(self) -> list[str]:
        """The prompts the embedding bank holds: they need no text encoder."""
        return self.predictor.list_available_embeddings()

    def _free_text(self, targets: Sequence[TextTarget]) -> list[str]:
        bank = set(self.vocabulary())
        return [t.name for t in targets if t.name.lower() not in bank]

    def check_targets(self, targets: Sequence[TextTarget]) -> None:
        """CT, MR or PET only; free text needs the text encoder, cached or downloadable."""
        if self.volume.modality not in VOXTELL_MODALITIES:
            raise InputError(
                f"VoxTell labels CT, MR and PET; {self.volume.name or 'this volume'} is "
                f"{self.volume.modality}: use the CLIP + SAM backend, or set the modality"
            )
        free = self._free_text(targets)
        if free and not _text_encoder_cached(self.text_encoder) and not self.online():
            vocabulary = self.vocabulary()
            hints = []
            for name in free:
                close = difflib.get_close_matches(name.lower(), vocabulary, n=3, cutoff=0.5)
                hints.append(f"{name!r} (close: {', '.join(close)})" if close else repr(name))
            raise InputError(
                "offline, VoxTell only takes the prompts in its embedding bank; "
                f"{'; '.join(hints)} "
                f"would need its text encoder {self.text_encoder}, which is not downloaded"
            )

    def _embeddings(self, targets: Sequence[TextTarget]) -> torch.Tensor:
        free = self._free_text(targets)
        if free and not _text_encoder_cached(self.text_encoder):
            self.report(
                f"downloading VoxTell's text encoder {self.text_encoder} (about 8 GB, once) for "
                f"free text: {', '.join(free)}; prompts in its bank need no download"
            )
        return self.predictor.embed_text_prompts([t.name for t in targets])

    def logits(
        self, embeddings: torch.Tensor, progress: Callable[[int, int], bool] | None = None
    ) -> np.ndarray:
        """(prompts, z, y, x) logits on the display grid, as VoxTell's ``predict_single_image``
        makes them.

        Its thresholding (``logits > 0``) and un-cropping are repeated here, keeping the
        logits for each organ's confidence.
        """
        from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image

        data, bbox, shape = self.predictor.preprocess(
            to_voxtell_grid(np.asarray(self.volume.data))[None]
        )
        logits = self.predictor.predict_sliding_window_return_logits(
            data, embeddings, progress_callback=progress
        )
        # Outside the non-zero crop VoxTell writes 0 (background): a logit of -inf.
        full = np.full((logits.shape[0], *shape), -np.inf, dtype=np.float32)
        full = insert_crop_into_image(full, logits.float().cpu().numpy(), bbox)
        return from_voxtell_grid(full)

    def run(
        self, targets: Sequence[TextTarget], values: Sequence[int]
    ) -> Generator[Progress | OrganResult, None, None]:
        """One sliding-window pass for all targets; yields progress per patch, then the organs.

        Closing the generator (Cancel) stops the pass at the next patch; nothing is
        yielded for an unfinished pass.
        """
        self.check_targets(targets)
        names = ", ".join(t.name for t in targets)
        yield Progress(0, len(targets), "embedding the prompts", 0, 0)
        embeddings = self._embeddings(targets)
        steps: queue.Queue = queue.Queue()
        stop = threading.Event()
        outcome: dict[str, Any] = {}

        def progress(done: int, total: int) -> bool:
            steps.put((done, total))
            return not stop.is_set()

        def work() -> None:
            try:
                outcome["logits"] = self.logits(embeddings, progress)
            except BaseException as err:
                outcome["error"] = err
            steps.put(None)

        # The pass runs in a thread so that this generator can report each patch and
        # stop it: VoxTell reports through a callback, not by yielding.
        thread = threading.Thread(target=work, name="voxtell-sliding-window", daemon=True)
        thread.start()
        try:
            while (step := steps.get()) is not None:
                yield Progress(0, len(targets), names, *step)
        finally:
            stop.set()
            thread.join()
        if "error" in outcome:
            raise outcome["error"]
        for k, (target, value) in enumerate(zip(targets, values, strict=True)):
            logit = outcome["logits"][k]
            mask = logit > 0
            confidence = (
                float(torch.sigmoid(torch.from_numpy(logit[mask])).mean()) if mask.any() else 0.0
            )
            yield OrganResult(target, value, mask, confidence)
