"""The model manager: the catalog with sizes, licenses, languages and a fit label for
this machine; install (with progress and cancel), remove and verify.

Installs and verifies run on a worker thread with the store's progress callback and
a cancel event; progress reaches the GUI thread through a queued signal. One
operation runs at a time; closing the dialog cancels it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.config import Settings
from app.errors import HearthError
from app.models.catalog import CatalogEntry
from app.models.store import ModelStore
from app.models.tiers import DOES_NOT_FIT, FITS, MachineMemory, detect_memory, fit_label

log = logging.getLogger(__name__)

COLUMNS = ("Model", "Kind", "Size", "Needs RAM", "Language", "License", "This machine",
           "Installed")
KIND_NAMES = {"llm": "Chat model", "stt": "Recognizer", "tts": "Voice", "wake": "Wake word"}
FIT_COLORS = {FITS: "#2e8b57", DOES_NOT_FIT: "#c0392b"}
TIGHT_COLOR = "#d68910"


def _size(n: int) -> str:
    if n <= 0:
        return "—"
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


class _Worker(QObject):
    """Runs one store operation off the GUI thread and reports through queued signals."""

    progress = Signal(str, int, int)
    done = Signal(str, bool, str)
    """(model id, ok, message)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._active = False

    @property
    def busy(self) -> bool:
        """True from `start` until just before `done` is emitted."""
        return self._active

    def start(self, model_id: str, job: Callable[[threading.Event], str]) -> None:
        self.cancel = threading.Event()
        self._active = True
        self._thread = threading.Thread(target=self._run, args=(model_id, job, self.cancel),
                                        name="hearth-gui-models", daemon=True)
        self._thread.start()

    def _run(self, model_id: str, job: Callable[[threading.Event], str],
             cancel: threading.Event) -> None:
        try:
            ok, message = True, job(cancel)
        except HearthError as exc:
            ok, message = False, "cancelled" if cancel.is_set() else str(exc).split("\n")[0]
        except Exception as exc:  # a worker must always report back to the dialog
            log.exception("model operation failed")
            ok, message = False, f"{type(exc).__name__}: {exc}"
        self._active = False
        try:
            self.done.emit(model_id, ok, message)
        except RuntimeError:  # the dialog was deleted meanwhile: nobody to tell
            log.debug("model manager gone before %s finished", model_id)

    def wait(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class ModelManagerDialog(QDialog):
    """The catalog as a table, with Install / Remove / Verify / Cancel."""

    def __init__(self, settings: Settings, parent: QWidget | None = None,
                 store: ModelStore | None = None, memory: MachineMemory | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hearth models")
        self.settings = settings
        self.store = store or ModelStore()
        self.memory = memory or detect_memory()
        self.entries: list[CatalogEntry] = []
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.memory_label = QLabel(f"This machine: {self.memory.describe()}", self)
        self.install_button = QPushButton("&Install", self)
        self.remove_button = QPushButton("&Remove", self)
        self.verify_button = QPushButton("&Verify", self)
        self.cancel_button = QPushButton("&Cancel", self)
        self.close_button = QPushButton("Close", self)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        for b in (self.install_button, self.remove_button, self.verify_button,
                  self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.memory_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

        self.worker = _Worker(self)
        queued = Qt.ConnectionType.QueuedConnection
        self.worker.progress.connect(self._on_progress, queued)
        self.worker.done.connect(self._on_done, queued)
        self.install_button.clicked.connect(self.install_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.verify_button.clicked.connect(self.verify_selected)
        self.cancel_button.clicked.connect(self.cancel_operation)
        self.close_button.clicked.connect(self.reject)
        self.refresh()
        self.resize(900, 480)

    # --- table ---------------------------------------------------------------------------

    def refresh(self) -> None:
        try:
            self.entries = list(self.store.catalog.entries)
        except HearthError as exc:
            self.entries = []
            self.status.setText(str(exc))
        selected = self.selected_id()
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            fit = fit_label(entry.ram_bytes, self.memory)
            installed = self.store.is_installed(entry.id)
            cells = (
                entry.name,
                KIND_NAMES.get(entry.kind, entry.kind),
                _size(entry.size_bytes),
                _size(entry.ram_bytes),
                ", ".join(entry.languages),
                entry.license,
                fit,
                "✓ installed" if installed else "",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.UserRole, entry.id)
                    item.setToolTip(f"{entry.id}\n{entry.description}".strip())
                if col == 6:
                    item.setForeground(QColor(FIT_COLORS.get(fit, TIGHT_COLOR)))
                if col in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
            if entry.id == selected:
                self.table.selectRow(row)
        self._update_buttons()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, model_id: str) -> None:
        for row, entry in enumerate(self.entries):
            if entry.id == model_id:
                self.table.selectRow(row)
                return

    @Slot()
    def _update_buttons(self) -> None:
        model_id = self.selected_id()
        busy = self.worker.busy
        installed = model_id is not None and self.store.is_installed(model_id)
        self.install_button.setEnabled(model_id is not None and not busy and not installed)
        self.remove_button.setEnabled(installed and not busy)
        self.verify_button.setEnabled(installed and not busy)
        self.cancel_button.setEnabled(busy)

    # --- operations ----------------------------------------------------------------------------

    @Slot()
    def install_selected(self) -> None:
        model_id = self.selected_id()
        if model_id is None or self.worker.busy:
            return

        def job(cancel: threading.Event) -> str:
            path = self.store.install(model_id, progress=self.worker.progress.emit, cancel=cancel)
            return f"Installed {model_id} at {path}"

        self._begin(f"Installing {model_id}…")
        self.worker.start(model_id, job)

    @Slot()
    def verify_selected(self) -> None:
        model_id = self.selected_id()
        if model_id is None or self.worker.busy:
            return

        def job(cancel: threading.Event) -> str:
            result = self.store.verify(model_id, cancel=cancel)
            if not result.ok:
                raise HearthError("; ".join(result.problems))
            return f"{model_id}: every file matches its checksum"

        self._begin(f"Verifying {model_id}…")
        self.progress.setRange(0, 0)  # verify has no byte progress: indeterminate
        self.worker.start(model_id, job)

    @Slot()
    def remove_selected(self) -> None:
        model_id = self.selected_id()
        if model_id is None or self.worker.busy:
            return
        answer = QMessageBox.question(self, "Remove model",
                                      f"Delete {model_id} from this computer?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.remove(model_id)

    def remove(self, model_id: str) -> None:
        """Delete an installed model (fast: runs on the GUI thread)."""
        try:
            self.store.remove(model_id)
        except HearthError as exc:
            self.status.setText(str(exc).split("\n")[0])
        else:
            self.status.setText(f"Removed {model_id}")
        self.refresh()

    @Slot()
    def cancel_operation(self) -> None:
        self.worker.cancel.set()
        self.status.setText("Cancelling…")

    def _begin(self, text: str) -> None:
        self.status.setText(text)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.setEnabled(True)
        for b in (self.install_button, self.remove_button, self.verify_button):
            b.setEnabled(False)

    @Slot(str, int, int)
    def _on_progress(self, label: str, done: int, total: int) -> None:
        if total > 0:
            # QProgressBar counts in int; use per-mille to stay clear of 32-bit overflow.
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{label}: {_size(done)} of {_size(total)}")
        else:
            self.progress.setRange(0, 0)
        self.status.setText(label)

    @Slot(str, bool, str)
    def _on_done(self, model_id: str, ok: bool, message: str) -> None:
        self.progress.hide()
        self.status.setText(message if ok else f"{model_id}: {message}")
        self.refresh()

    def done(self, result: int) -> None:
        """Closing (Close, Escape, the window's ✕) cancels a running operation first."""
        if self.worker.busy:
            self.worker.cancel.set()
            self.worker.wait(2.0)
        super().done(result)
