"""Text -> one named, non-overlapping label map.

For each target typed by the user: CLIP finds it (dense similarity maps on a few
slices, :mod:`~napari_textseg.engine.text.locate`), SAM or SAM2 segments the key
slice from the chosen points and the memory-bank engine propagates it through the
volume. "Text + click" skips CLIP: the click says where, the text says what. Each
organ gets a confidence (localisation x the model's mean predicted IoU), and
overlaps are resolved per voxel by the higher confidence (Medical SAM3,
:mod:`~napari_textseg.engine.text.merge`).

Slice embeddings are shared between organs (one session, reset between targets),
so five organs cost one encoder pass per slice, not five.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from napari_textseg.core.errors import InputError
from napari_textseg.core.text_prompts import TextTarget, background_ensemble, object_ensemble
from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session import PostProcessing, SegmentationSession
from napari_textseg.engine.text.clip_dense import DenseClip
from napari_textseg.engine.text.locate import LocateSettings, Location, locate, scored_slices
from napari_textseg.engine.text.protocol import OrganResult, Progress
from napari_textseg.engine.text.text_encoder import TextEncoder

__all__ = ["LabelSettings", "TextLabeller"]


@dataclass(frozen=True)
class LabelSettings:
    """Localisation, propagation and clean-up of text labelling."""

    locate: LocateSettings = field(default_factory=LocateSettings)
    propagation: PropagationSettings = field(default_factory=PropagationSettings)
    post: PostProcessing = field(
        default_factory=lambda: PostProcessing(fill_holes=True, keep_clicked=True)
    )


class TextLabeller:
    """The training-free text backend: CLIP finds each target, SAM/SAM2 segments and propagates it.

    Parameters
    ----------
    session
        The segmentation session of the volume (axial slices, no ROI); its embedding
        cache is shared by all targets.
    raw
        The volume as read (HU for CT), for the anatomical priors; None disables them.
    clip, encoder
        Dense CLIP features and the text encoder; only needed for targets without clicks.
    clicks
        Text + click (or box): target name -> (points (N, 3) z, y, x; labels (N,)[; boxes
        {slice: (y0, x0, y1, x1)}]); the prompt says where, the text says what, and CLIP
        is not used for that target. A box is how a box-only model (LiteMedSAM) names organs.
    """

    id = "clip-sam"
    title = "CLIP + SAM (training-free)"

    def __init__(
        self,
        session: SegmentationSession,
        *,
        raw: np.ndarray | None = None,
        clip: DenseClip | None = None,
        encoder: TextEncoder | None = None,
        settings: LabelSettings = LabelSettings(),
        clicks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ):
        if session.axis != 0 or session.roi_mm is not None:
            raise ValueError(
                "text labelling runs on axial slices of the whole volume (axis 0, no ROI)"
            )
        self.session = session
        self.raw = raw
        self.clip = clip
        self.encoder = encoder
        self.settings = settings
        self.clicks = dict(clicks or {})
        if clip is None:  # every target has its click or box: no CLIP runs, and the name says so
            self.title = f"your prompts + {session.slice_model.title} (no CLIP)"
        self._slices: np.ndarray | None = None
        self._embeddings: torch.Tensor | None = None

    # -- localisation -----------------------------------------------------------------

    def _patch_embeddings(self) -> tuple[np.ndarray, torch.Tensor]:
        """Dense CLIP features of the scored slices, computed once per volume."""
        if self.clip is None:
            raise InputError(
                "finding an organ from text alone needs a CLIP model; load one, or click the organ"
            )
        if self._embeddings is None:
            slices = scored_slices(self.session.n_slices, self.settings.locate.max_slices)
            self._embeddings = self.clip.embed(self.session.frames[slices])
            self._slices = slices
        assert self._slices is not None
        return self._slices, self._embeddings

    def class_embeddings(self, targets: Sequence[TextTarget]) -> torch.Tensor:
        """(len(targets) + 1, D): each target's ensemble, then the background's."""
        if self.encoder is None:
            raise InputError(
                "finding an organ from text alone needs a CLIP model; load one, or click the organ"
            )
        rows = [self.encoder.ensemble(object_ensemble(t)) for t in targets]
        rows.append(self.encoder.ensemble(background_ensemble()))
        return torch.stack(rows)

    def locate(self, targets: Sequence[TextTarget]) -> list[Location]:
        """Key slice, points and confidence of every target, from one softmax over all of them.

        Targets compete with each other and with the background, so "liver" and
        "spleen" are not both put on the brightest organ.
        """
        slices, embeddings = self._patch_embeddings()
        assert self.clip is not None
        probabilities = self.clip.probabilities(embeddings, self.class_embeddings(targets))
        size = self.session.frames.shape[1:]
        raw = None
        if self.raw is not None and self.settings.locate.priors:
            raw = np.asarray(self.raw)[slices]
        locations = []
        for k, target in enumerate(targets):
            maps = F.interpolate(
                probabilities[:, k : k + 1], size=size, mode="bilinear", align_corners=False
            )
            hu_range = target.organ.hu_range if target.organ is not None else None
            locations.append(
                locate(maps[:, 0].numpy(), slices, raw, hu_range, self.settings.locate)
            )
        return locations

    # -- segmentation -----------------------------------------------------------------

    def segment_steps(
        self, target: TextTarget, value: int, location: Location
    ) -> Generator[tuple[int, int], None, OrganResult]:
        """Segment and propagate one target from its points; yields ``(done, total)``."""
        if not (location.labels == 1).any() and not location.boxes:
            raise InputError(f"{target.name}: no location found; click the organ and run it again")
        session = self.session
        session.reset()
        session.set_prompts(location.points_zyx, location.labels, location.boxes)
        mask = yield from session.propagate_steps(
            self.settings.propagation, post=self.settings.post
        )
        scores = [s for z, s in session.result.scores.items() if session.result.masks[z].any()]
        quality = float(np.clip(np.mean(scores), 0.0, 1.0)) if scores else 0.0
        return OrganResult(target, value, mask, location.confidence * quality, location)

    def check_targets(self, targets: Sequence[TextTarget]) -> None:
        """Clicks must name a target, and a target without a click needs CLIP."""
        unknown = set(self.clicks) - {t.name for t in targets}
        if unknown:
            raise InputError(
                f"clicks were given for {', '.join(sorted(unknown))}, which is not a target"
            )
        if (self.clip is None or self.encoder is None) and any(
            t.name not in self.clicks for t in targets
        ):
            raise InputError(
                "finding an organ from text alone needs a CLIP model; load one, or click the organ"
            )

    def run(
        self,
        targets: Sequence[TextTarget],
        values: Sequence[int],
        clicks: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> Generator[Progress | OrganResult, None, None]:
        """Label every target in turn: yields :class:`Progress`, and an :class:`OrganResult` per
        target.

        ``clicks``, when given, replaces the clicks the labeller was made with. Closing
        the generator (Cancel) mid-way keeps the results already yielded; the target in
        progress leaves nothing behind.
        """
        if clicks is not None:
            self.clicks = dict(clicks)
        self.check_targets(targets)
        clicks = self.clicks
        count = len(targets)
        by_text = [t for t in targets if t.name not in clicks]
        yield Progress(0, count, "finding targets with CLIP" if by_text else "", 0, 0)
        found = dict(
            zip([t.name for t in by_text], self.locate(by_text) if by_text else [], strict=True)
        )
        for index, (target, value) in enumerate(zip(targets, values, strict=True)):
            if target.name in clicks:
                points, labels, *boxes = clicks[
                    target.name
                ]  # (points, labels[, boxes]): text + click or box
                points = np.asarray(points, dtype=float).reshape(-1, 3)
                on_box = boxes[0] if boxes and boxes[0] else None
                z = int(np.rint(points[0, 0])) if len(points) else min(on_box or {0: None})
                location = Location(z, points, np.asarray(labels), 1.0, on_box)
            else:
                location = found[target.name]
            steps = self.segment_steps(target, value, location)
            while True:
                try:
                    done, total = next(steps)
                except StopIteration as stop:
                    yield stop.value
                    break
                yield Progress(index, count, target.name, done, total)
