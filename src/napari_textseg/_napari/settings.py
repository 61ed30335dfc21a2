"""The panel's settings as evented models: Qt-free state the widgets bind to, the controllers read.

As napari-animation keeps its state in a Qt-free model with a thin Qt view: each section's
controls are views of one model here (a control changes the model; a change of the model,
from a script or another view, updates the control), and a controller reads the model
when it starts work. The engine's own :class:`PropagationSettings` stays the validated,
frozen description of one run; :meth:`PropagationOptions.engine_settings` makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psygnal import evented

from napari_textseg.engine.interactive.propagate import PropagationSettings
from napari_textseg.engine.interactive.session import PostProcessing
from napari_textseg.models.registry import DEFAULT_MODEL

__all__ = [
    "ModelChoice",
    "ModelSettings",
    "PanelSettings",
    "PromptSettings",
    "PropagationOptions",
    "TextSettings",
]

_DEFAULT = PropagationSettings()  # the command line's defaults too


@dataclass(frozen=True)
class ModelChoice:
    """Which model to run: a registry id, optionally with a local checkpoint file."""

    model_id: str | None
    checkpoint: str | None = None
    device: str | None = None
    runtime: str = "auto"  # where LiteMedSAM's encoder runs (models.encoder_runtime)
    precision: str = "f32"
    server: str | None = None  # nnInteractive on a server (its URL)
    autozoom: bool = True  # nnInteractive's AutoZoom


@evented
@dataclass
class ModelSettings:
    """The model section: every model picker of a viewer shows (and edits) this one."""

    model_id: str = DEFAULT_MODEL  # "": a local checkpoint file
    checkpoint: str = ""
    device: str = "auto"
    runtime: str = "auto"
    precision: str = "f32"
    server: str = ""  # nnInteractive on a server: its URL ("": this machine)
    autozoom: bool = True

    def choice(self) -> ModelChoice:
        """What Load loads; refused when neither a model nor a file is chosen."""
        checkpoint = self.checkpoint.strip() or None
        if not self.model_id and checkpoint is None:
            raise ValueError("choose a model, or give a local checkpoint file")
        device = None if self.device == "auto" else self.device
        server = self.server.strip() or None
        return ModelChoice(
            self.model_id or None, checkpoint, device, self.runtime, self.precision, server,
            self.autozoom,
        )  # fmt: skip


@evented
@dataclass
class PromptSettings:
    """Where the Prompts section commits an object."""

    target_layer: str = ""  # "": a new Labels layer
    value: int = 0  # 0: the next free value
    name: str = "object"
    preserve_existing: bool = True


@evented
@dataclass
class PropagationOptions:
    """The Propagate section: the memory bank, the passes, ROI mode and clean-up."""

    memory_size: int = _DEFAULT.memory_size
    policy: str = _DEFAULT.policy
    offload: bool = _DEFAULT.offload
    projection: str = _DEFAULT.projection
    direction: str = _DEFAULT.direction
    empty_stop: int = _DEFAULT.empty_stop
    use_range: bool = False
    first: int = 0
    last: int = 9_999  # past the last slice: the engine clips the range to the volume
    roi_mm: float = 0.0  # 0: off
    roi_box: bool = False  # box ROI mode: every slice cropped to 3x the box around it
    confine_layer: str = ""  # "": none
    confine_values: str = ""  # label values, e.g. "5" or "2, 3"; "": any
    fill_holes: bool = False
    keep_clicked: bool = False

    def engine_settings(self) -> PropagationSettings:
        """The engine's settings for one run (checked there: memory size 1-6, ...)."""
        return PropagationSettings(
            direction=self.direction,
            memory_size=self.memory_size,
            policy=self.policy,  # type: ignore[arg-type]
            empty_stop=self.empty_stop,
            slice_range=(self.first, self.last) if self.use_range else None,
            offload=self.offload,
            projection=self.projection,  # type: ignore[arg-type]
        )

    def post(self) -> PostProcessing:
        return PostProcessing(self.fill_holes, self.keep_clicked)

    def confine_label_values(self) -> tuple[int, ...]:
        """The confining organ's label values (empty: any label)."""
        try:
            return tuple(int(v) for v in self.confine_values.replace(",", " ").split())
        except ValueError:
            raise ValueError("confine label values must be whole numbers, e.g. 5 or 2, 3") from None

    def session_key(self) -> tuple:
        """What needs a new session (and so new embeddings) when it changes."""
        return (
            self.roi_mm or None,
            self.roi_box,
            self.confine_layer or None,
            self.confine_label_values(),
        )

    @property
    def whole_volume(self) -> bool:
        """No ROI, no confining organ: the session text labelling can share."""
        return not self.roi_mm and not self.roi_box and not self.confine_layer


@evented
@dataclass
class TextSettings:
    """The Text section: what to label, with which backend, into which layer."""

    text: str = ""
    backend: str = "auto"
    allow_cpu: bool = False
    # free text, as typed (CLIP reads any words); else organs of the vocabulary
    allow_any_name: bool = False
    clip_model: str = ""  # a CLIP card id; "": a local file
    clip_file: str = ""
    target_layer: str = ""  # "": a new Labels layer
    use_clicks: bool = False


@dataclass
class PanelSettings:
    """Everything the panel's sections set, in one object per viewer."""

    model: ModelSettings = field(default_factory=ModelSettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    propagation: PropagationOptions = field(default_factory=PropagationOptions)
    text: TextSettings = field(default_factory=TextSettings)
