"""The model section: one model choice and one Load for everything that uses a model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QComboBox, QFileDialog, QLabel, QLineEdit, QPushButton

from napari_textseg._napari.model_controller import model_controller_for
from napari_textseg._napari.widgets._common import fit_combo, hbox
from napari_textseg._napari.widgets._section import Section
from napari_textseg._napari.widgets.download import DownloadButton
from napari_textseg._napari.wording import panel_wording
from napari_textseg.models.encoder_runtime import PRECISIONS, RUNTIMES
from napari_textseg.models.registry import CARDS, DEFAULT_MODEL, real_image_warning

if TYPE_CHECKING:
    import napari

__all__ = ["LOCAL_CHECKPOINT", "ModelSection"]

LOCAL_CHECKPOINT = "local checkpoint file ..."


def _entry(card) -> str:
    """A short combo entry: the id and what it takes; the long notes go below the combo."""
    if card.box_only:
        return f"{card.id}  (boxes, installed)"
    if card.family == "nninteractive":
        return f"{card.id}  (3-D, non-commercial)"
    if "phantom" in card.tags:
        return f"{card.id}  (phantom)"
    return f"{card.id}  ({card.family})"


class ModelSection(Section):
    """Choose a segmentation model (or a local file), download it, load it."""

    section = "model"
    hint = "Choose a model and press Load."

    def __init__(self, napari_viewer: napari.Viewer, *, scroll: bool = False):
        super().__init__(napari_viewer, scroll=scroll)
        self.controller = model_controller_for(napari_viewer)
        self.workspace = self.controller.workspace
        self.model = QComboBox()
        # The default first: LiteMedSAM, installed with the plugin, trained on medical images.
        for card in sorted(CARDS.values(), key=lambda c: c.id != DEFAULT_MODEL):
            if card.family in ("litemedsam", "sam", "sam2", "nninteractive"):
                self.model.addItem(_entry(card), card.id)
        self.model.addItem(LOCAL_CHECKPOINT, None)
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("optional: a local .pth/.pt file")
        browse = QPushButton("...")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.runtime = QComboBox()
        self.runtime.addItems(list(RUNTIMES))
        self.runtime.setToolTip(
            "where LiteMedSAM's image encoder runs: auto (OpenVINO on a CPU when installed), "
            "torch, or openvino"
        )
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.precision.setToolTip(
            "f32: equal to PyTorch. bf16 (OpenVINO): about 2x faster again, masks move by "
            "a few pixels"
        )
        self.server = QLineEdit()
        self.server.setPlaceholderText("nnInteractive server URL (optional)")
        self.test_server = QPushButton("Test")
        self.test_server.setToolTip("ask the nnInteractive server whether it answers")
        self.autozoom = QCheckBox("AutoZoom")
        self.autozoom.setToolTip("nnInteractive zooms out when the object outgrows its patch")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop loading, or stop encoding the image in the background")
        self.load = QPushButton("Load model")
        self.licence = QLabel("")
        self.licence.setWordWrap(True)
        self.licence.setObjectName("licence")
        self.download = DownloadButton(
            self.model, self.status, panel_wording("checkpoint"), self.tasks, self.section
        )
        fit_combo(self.model)

        self.form.addRow("model", self.model)
        self.form.addRow("checkpoint", hbox(self.checkpoint, browse))
        self.form.addRow("device", hbox(self.device, self.load, self.download))
        self.form.addRow("encoder", hbox(self.runtime, self.precision, self.cancel_button))
        self.form.addRow("server", hbox(self.server, self.test_server, self.autozoom))
        self.form.addRow(self.licence)
        self.finish_layout(stretch=False)

        self.action(self.load, self._load)
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_on_change(self.model, self.checkpoint, self.device, self.runtime, self.precision)
        self.listen(self.workspace.model_ready, self._ready)
        # The controls are views of the viewer's one model choice: every picker agrees.
        model = self.workspace.settings.model
        self.bind(
            self.model,
            model,
            "model_id",
            to_model=lambda v: "" if v == LOCAL_CHECKPOINT else v,
            to_widget=lambda v: v or LOCAL_CHECKPOINT,
        )
        for widget, name in ((self.checkpoint, "checkpoint"), (self.device, "device")):
            self.bind(widget, model, name)
        for widget, name in ((self.runtime, "runtime"), (self.precision, "precision")):
            self.bind(widget, model, name)
        # after the combo's own binding: the licence of the model the combo now shows
        self.listen(model.events.model_id, self._show_licence)
        self.bind(self.server, model, "server")
        self.bind(self.autozoom, model, "autozoom")
        self.action(self.test_server, self._test_server)
        self._show_licence()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Checkpoint", "", "Checkpoints (*.pt *.pth *.bin *.safetensors)"
        )
        if path:
            self.checkpoint.setText(path)

    def _show_licence(self, *_args: object) -> None:
        model_id = self.model.currentData()
        if model_id is None:
            self.licence.setText("A local file: its architecture is recognised from its contents.")
            return
        card = CARDS[model_id]
        origin = f"; weights from {card.package}, a third party's package" if card.package else ""
        # One line here; the whole story (title, licence page, provenance) in its tooltip.
        self.licence.setText(f"Licence: {card.license}{origin}")
        self.licence.setToolTip(
            f"{card.title}. Licence: {card.license} ({card.license_url}). Weights: {card.source}."
        )

    def _load(self) -> None:
        self.controller.load_model(self.workspace.settings.model.choice())

    def _test_server(self) -> None:
        """Claim a session on the server and give it back: one line either way."""
        url = self.workspace.settings.model.server.strip()
        if not url:
            raise ValueError("give the nnInteractive server's URL, e.g. http://gpu-box:1527")

        def work() -> str:
            from napari_textseg.models.nninteractive import connect_nninteractive

            session = connect_nninteractive(url)
            version = session.INFERENCE_SESSION_VERSION
            session.close()
            return version

        def done(version: str) -> None:
            self.say(f"the server at {url} answers (nnInteractive {version}); Load uses it")

        self.say(f"asking {url} ...")
        self.tasks.start(self.section, work, done, "Testing the server")

    def cancelled_note(self) -> str:
        return "the slices encoded so far are kept"

    def _ready(self, card) -> None:
        """A phantom model on a real image says, here, that it will not work there."""
        try:
            image = self.workspace.current_image()
        except ValueError:
            return
        warning = real_image_warning(card, image.name)
        if warning:
            self.status.setText(self.status.text() + f". Warning: {warning}")
