"""The Download button beside a panel's model choice: the licence first, then a verified
download in the background, with the panel's own words in every message."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QLabel, QMessageBox, QPushButton

from napari_textseg._napari.tasks import TaskRunner
from napari_textseg.models.registry import CARDS, ModelCard
from napari_textseg.models.store import Wording, cached_path

__all__ = ["DownloadButton"]


def _alive(*widgets: object) -> bool:
    """Whether Qt still holds these widgets (a closed panel deletes them under Python's feet)."""
    try:
        for widget in widgets:
            widget.objectName()  # type: ignore[attr-defined]
    except RuntimeError:
        return False
    return True


def _downloadable(card: ModelCard | None) -> bool:
    return card is not None and not card.bundled and not card.local_only


class DownloadButton(QPushButton):
    """Fetches the checkpoint of the card chosen in ``models``; enabled only where one
    can be downloaded and is not in the cache yet."""

    def __init__(
        self, models: QComboBox, status: QLabel, wording: Wording, tasks: TaskRunner, section: str
    ):
        super().__init__("Download")
        self._models, self._status, self._wording = models, status, wording
        self._tasks, self._section = tasks, section
        self._worker = None
        models.currentIndexChanged.connect(self.refresh)
        self.clicked.connect(self._ask)
        self.refresh()

    def _card(self) -> ModelCard | None:
        model_id = self._models.currentData()
        return CARDS.get(model_id) if model_id else None

    def refresh(self, *_args: object) -> None:
        """Enable for a downloadable card that is not cached; say why not in the tooltip."""
        card = self._card()
        if self._worker is not None:
            return
        if not _downloadable(card):
            self.setEnabled(False)
            self.setToolTip("this model cannot be downloaded by the plugin: use a local file")
        elif cached_path(card).is_file():  # type: ignore[arg-type]
            self.setEnabled(False)
            self.setToolTip(f"already downloaded: {cached_path(card)}")  # type: ignore[arg-type]
        else:
            self.setEnabled(True)
            self.setToolTip(f"download {card.filename} into the cache, after showing its licence")  # type: ignore[union-attr]

    def licence_text(self, card: ModelCard) -> str:
        """What the user reads and accepts before the download starts."""
        size = f"{card.size_mb:g} MB" if card.size_mb else "its checkpoint"
        return (
            f"{card.title} is released under the {card.license} licence:\n{card.license_url}\n\n"
            f"Accept the licence and download {size} "
            f"from\n{card.source}\ninto\n{cached_path(card)}?"
        )

    def _ask(self) -> None:
        card = self._card()
        if not _downloadable(card):
            return
        answer = QMessageBox.question(
            self,
            f"Download {card.id}",
            self.licence_text(card),  # type: ignore[union-attr]
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.start(card)  # type: ignore[arg-type]

    def start(self, card: ModelCard) -> None:
        """Download ``card`` (its licence accepted) in a worker; the result goes to the status
        line."""
        from napari_textseg.models.store import download

        def work():
            return download(
                card, progressbar=False, confirm_license=lambda _card: True, wording=self._wording
            )

        def returned(path) -> None:
            if _alive(self._status):
                self._status.setText(f"{card.id} downloaded to {path}; press Load")

        def finished() -> None:
            self._worker = None
            if _alive(self, self._models):  # the panel may have closed while the file came in
                self.refresh()

        self._worker = self._tasks.start(self._section, work, returned, f"downloading {card.id}")
        self._worker.finished.connect(finished)
        self.setEnabled(False)
