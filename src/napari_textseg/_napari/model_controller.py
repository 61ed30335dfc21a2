"""The model section's work: load a model in the background, then encode the current image
ahead of the user's prompts (from the slice on screen outwards)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from napari_textseg._napari.wording import panel_wording
from napari_textseg._napari.workspace import ModelChoice, Workspace, workspace_for
from napari_textseg.engine.interactive.session_factory import EmbeddingOptions, open_slice_model

if TYPE_CHECKING:
    import napari

__all__ = ["ModelController", "model_controller_for"]


class ModelController:
    """Loads the workspace's model and keeps its embeddings ahead of the user."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._ready_line = ""  # what the model section says about the loaded model

    def _say(self, text: str) -> None:
        self.workspace.say("model", text)

    def load_model(self, choice: ModelChoice) -> None:
        """Load a model in the background; switching models drops the current object. A
        failed Load leaves the model loaded before in use."""
        ws = self.workspace
        if ws.loading:
            self._say("a model is already loading; wait for it to finish")
            return
        from napari_textseg.models.encoder_runtime import check_runtime
        from napari_textseg.models.loader import load_model

        check_runtime(choice.runtime, choice.precision)  # before the old model is dropped
        previous = ws.session

        def work():
            if previous is not None:  # its last encode ends before a new model converts or loads
                previous.cache.close(wait=True)
            wording = panel_wording("checkpoint")
            loaded = load_model(
                choice.model_id, choice.checkpoint, device=choice.device, wording=wording
            )
            return loaded, open_slice_model(
                loaded, EmbeddingOptions(choice.runtime, choice.precision)
            )

        def done(result: tuple[Any, Any]) -> None:
            ws.loading = False
            ws.busy.emit(ws.working)  # the task runner said "busy" while loading was still set
            loaded, slice_model = result
            encoder = slice_model.encoder
            runs = ""
            if encoder is not None:
                runtime = "OpenVINO" if encoder.runtime == "openvino" else "PyTorch"
                runs = f" (encoder: {runtime} {encoder.precision})"
            note = f"; {slice_model.runtime_note}" if slice_model.runtime_note else ""
            self._ready_line = f"{loaded.card.name} ready on {loaded.device}{runs}{note}"
            self._say(self._ready_line)
            ws.set_model(loaded, slice_model, choice)
            self.precompute()

        def failed(_message: str) -> None:
            ws.loading = False
            ws.busy.emit(ws.working)

        # No background embedding work may run while the new model's modules import.
        ws.tasks.cancel_background("model")
        ws.loading = True
        self._say("loading the model ...")
        ws.tasks.start("model", work, done, "Loading model", on_error=failed)

    def precompute(self) -> None:
        """Encode the current image in the background, from the slice on screen outwards
        (progress and Cancel in the model section); prompts are served first."""
        ws = self.workspace
        try:
            image = ws.current_image()
            session = ws.session_for(image)
        except ValueError:
            return  # no image yet, or options that need the user first: prompts encode on demand
        if session.uses_roi:
            return
        at = int(ws.viewer.dims.current_step[session.axis])
        name = image.name

        def done(counts: tuple[int, int]) -> None:
            encoded, read = counts
            self._say(
                f"{self._ready_line}. {name}: every slice ready ({encoded} encoded, {read} "
                "from the cache); a prompt costs the decoder only"
            )

        def step(event: tuple[int, int], _bar: Any) -> tuple[int, int]:
            done_, total = event
            self._say(
                f"{self._ready_line}. Encoding {name} in the background: {done_}/{total} "
                "slices (prompts first; Cancel stops it)"
            )
            return event

        ws.tasks.start(
            "model",
            lambda: (yield from session.precompute_steps(at)),
            done,
            "Encoding slices in the background",
            layer=image,
            on_yield=step,
            background=True,
        )


def model_controller_for(viewer: napari.Viewer) -> ModelController:
    """The model controller of ``viewer``'s workspace."""
    return workspace_for(viewer).controller(ModelController)
