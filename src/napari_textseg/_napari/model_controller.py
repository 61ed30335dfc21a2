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
            if previous is not None and previous.encodes_slices:  # its last encode ends first
                previous.cache.close(wait=True)
            if is_nninteractive(choice):
                return open_nninteractive_choice(choice)
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
            self._ready_line = f"{loaded.card.name} ready on {slice_model.where}{runs}{note}"
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
        if session.uses_roi or not session.encodes_slices:
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


def is_nninteractive(choice: ModelChoice) -> bool:
    """Whether ``choice`` is nnInteractive: by name, a server, or a model folder."""
    from pathlib import Path

    folder = choice.checkpoint is not None and Path(choice.checkpoint).expanduser().is_dir()
    return choice.model_id == "nninteractive" or bool(choice.server) or folder


def open_nninteractive_choice(choice: ModelChoice) -> tuple[Any, Any]:
    """(LoadedModel, NnInteractiveModel): nnInteractive on a server, or here (in a worker)."""
    from napari_textseg.engine.interactive.nninteractive import NnInteractiveModel
    from napari_textseg.models.device import pick_device
    from napari_textseg.models.loader import LoadedModel
    from napari_textseg.models.nninteractive import (
        connect_nninteractive,
        network_runtime,
        nninteractive_folder,
        open_nninteractive,
    )
    from napari_textseg.models.registry import get_card

    device = pick_device(choice.device)
    if choice.server:
        session = connect_nninteractive(choice.server, autozoom=choice.autozoom)
        folder, where = None, choice.server
    else:
        folder = nninteractive_folder(choice.checkpoint)
        session = open_nninteractive(
            folder, device, autozoom=choice.autozoom, runtime=choice.runtime,
            precision=choice.precision,
        )  # fmt: skip
        where = f"{device} ({network_runtime(session)})"
    model = NnInteractiveModel(session, where, autozoom=choice.autozoom)
    return LoadedModel(None, get_card("nninteractive"), folder, device), model  # type: ignore[arg-type]
