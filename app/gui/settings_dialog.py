"""The settings dialog: edits the same TOML file as `hearth config`, through `app.config`.

Every change is validated by `app.config.replace` (the same checks as loading the
file) and written with `save_settings`; a bad value is shown inside the dialog, not
in a pop-up. The window applies saved settings at once (pipeline parts are rebuilt
in the background). The microphone test records a few seconds and plays them back
on a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.config import Settings, replace, save_settings
from app.errors import ConfigError, HearthError
from speech.errors import SpeechError

log = logging.getLogger(__name__)

TEST_RECORD_SECONDS = 3.0


def _combo(choices: list[tuple[str, str]], current: str, editable: bool = False) -> QComboBox:
    """A combo box of (label, value) pairs with `current` selected (added if unknown)."""
    box = QComboBox()
    box.setEditable(editable)
    for label, value in choices:
        box.addItem(label, value)
    index = box.findData(current)
    if index < 0:
        box.addItem(current, current)
        index = box.count() - 1
    box.setCurrentIndex(index)
    return box


def _value(box: QComboBox) -> str:
    """The chosen value; for an editable box, typed text that is not one of the labels."""
    if box.isEditable() and box.currentText() != box.itemText(box.currentIndex()):
        return box.currentText().strip()
    data = box.currentData()
    return str(data) if data is not None else box.currentText().strip()


def _device_choices(kind: str) -> list[tuple[str, str]]:
    """("System default", "") plus each device of `kind` by name; empty list on failure."""
    choices = [("System default", "")]
    try:
        from speech.devices import list_devices

        for dev in list_devices():
            channels = dev.max_input_channels if kind == "input" else dev.max_output_channels
            if channels > 0:
                choices.append((dev.name, dev.name))
    except (SpeechError, OSError) as exc:
        log.info("cannot list %s devices: %s", kind, exc)
    return choices


def _catalog_choices(kind: str) -> list[tuple[str, str]]:
    """("Automatic", "auto") plus the catalog's models of `kind` (installed ones marked)."""
    choices = [("Automatic", "auto")]
    try:
        from app.models.store import ModelStore

        store = ModelStore()
        for entry in store.catalog.of_kind(kind):
            mark = "" if store.is_installed(entry.id) else " (not installed)"
            choices.append((f"{entry.name}{mark}", entry.id))
    except HearthError as exc:
        log.info("no catalog: %s", exc)
    return choices


class _MicTest(QObject):
    """Records from the chosen microphone, then plays it on the chosen speaker (worker thread)."""

    finished = Signal(str)

    def run(self, settings: Settings) -> None:
        threading.Thread(target=self._work, args=(settings,), name="hearth-gui-mictest",
                         daemon=True).start()

    def _work(self, settings: Settings) -> None:
        from app import speech_setup
        from speech.audio import AudioChunk

        try:
            mic = speech_setup.open_microphone(settings)
            chunks: list[AudioChunk] = []
            mic.start()
            try:
                recorded = 0.0
                # A device can take a moment to deliver its first block: allow some slack.
                deadline = time.monotonic() + TEST_RECORD_SECONDS + 5.0
                while recorded < TEST_RECORD_SECONDS and time.monotonic() < deadline:
                    chunk = mic.read(timeout=0.5)
                    if chunk is not None:
                        chunks.append(chunk)
                        recorded += chunk.seconds
            finally:
                mic.close()
            if not chunks:
                self.finished.emit("The microphone delivered no sound.")
                return
            audio = AudioChunk.concatenate(chunks)
            peak = float(abs(audio.to_float()).max())
            speaker = speech_setup.open_speaker(settings)
            try:
                speaker.play(audio)
            finally:
                speaker.close()
        except (HearthError, SpeechError, OSError) as exc:
            self.finished.emit(f"Test failed: {exc}".split("\n")[0])
            return
        quiet = " It was very quiet: is the microphone muted?" if peak < 0.01 else ""
        self.finished.emit(f"Recorded and played {audio.seconds:.1f} s.{quiet}")


class SettingsDialog(QDialog):
    """Tabs for audio, speech, assistant, voice and window; Save writes the config file."""

    saved = Signal(object)
    """The new `Settings`, after they were written to the file."""

    def __init__(self, settings: Settings, config_path: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hearth settings")
        self.settings = settings
        self.config_path = config_path
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._audio_tab(), "&Audio")
        self.tabs.addTab(self._speech_tab(), "S&peech")
        self.tabs.addTab(self._assistant_tab(), "A&ssistant")
        self.tabs.addTab(self._voice_tab(), "&Voice")
        self.tabs.addTab(self._window_tab(), "&Window")
        self.problem = QLabel(self)
        self.problem.setObjectName("settingsProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b;")
        self.problem.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        where = QLabel(f"Saved to {config_path}", self)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(self.problem)
        layout.addWidget(where)
        layout.addWidget(buttons)
        self.resize(560, 460)

    # --- tabs --------------------------------------------------------------------------------

    def _audio_tab(self) -> QWidget:
        s = self.settings.audio
        page = QWidget()
        form = QFormLayout(page)
        self.input_device = _combo(_device_choices("input"), s.input_device, editable=True)
        self.output_device = _combo(_device_choices("output"), s.output_device, editable=True)
        self.beeps = QCheckBox("Beep when listening starts and stops")
        self.beeps.setChecked(s.beeps)
        self.test_button = QPushButton(f"Test: record {TEST_RECORD_SECONDS:.0f} s and play back")
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self._mic_test = _MicTest(self)
        self._mic_test.finished.connect(self._on_test_finished,
                                        Qt.ConnectionType.QueuedConnection)
        self.test_button.clicked.connect(self._start_test)
        form.addRow("&Microphone:", self.input_device)
        form.addRow("S&peaker:", self.output_device)
        form.addRow("", self.beeps)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        form.addRow("", test_row)
        form.addRow("", self.test_result)
        return page

    def _speech_tab(self) -> QWidget:
        stt, wake = self.settings.stt, self.settings.wake
        page = QWidget()
        form = QFormLayout(page)
        self.stt_backend = _combo([("Automatic", "auto"), ("PocketSphinx", "pocketsphinx"),
                                   ("Vosk", "vosk")], stt.backend)
        self.stt_model = _combo(_catalog_choices("stt"), stt.model, editable=True)
        self.wake_enabled = QCheckBox("Listen for a wake phrase")
        self.wake_enabled.setChecked(wake.enabled)
        self.wake_phrase = QLineEdit(wake.phrase)
        form.addRow("&Recognizer:", self.stt_backend)
        form.addRow("Recognizer &model:", self.stt_model)
        form.addRow("", self.wake_enabled)
        form.addRow("Wake &phrase:", self.wake_phrase)
        return page

    def _assistant_tab(self) -> QWidget:
        eng = self.settings.engine
        page = QWidget()
        form = QFormLayout(page)
        self.engine_backend = _combo([("Automatic (from this machine's RAM)", "auto"),
                                      ("llama.cpp", "llama-cpp"), ("Built-in numpy", "numpy"),
                                      ("Server on my network", "remote")], eng.backend)
        self.engine_model = _combo(_catalog_choices("llm"), eng.model, editable=True)
        self.system_prompt = QPlainTextEdit(eng.system_prompt)
        self.system_prompt.setTabChangesFocus(True)
        self.history_enabled = QCheckBox("Keep a local history of conversations")
        self.history_enabled.setChecked(self.settings.history.enabled)
        form.addRow("&Engine:", self.engine_backend)
        form.addRow("&Model:", self.engine_model)
        form.addRow("System &prompt:", self.system_prompt)
        form.addRow("", self.history_enabled)
        return page

    def _voice_tab(self) -> QWidget:
        tts = self.settings.tts
        page = QWidget()
        form = QFormLayout(page)
        self.tts_enabled = QCheckBox("Speak replies")
        self.tts_enabled.setChecked(tts.enabled)
        self.tts_backend = _combo([("Automatic", "auto"), ("Piper", "piper"),
                                   ("espeak-ng", "espeak-ng")], tts.backend)
        self.tts_voice = _combo(_catalog_choices("tts"), tts.voice, editable=True)
        self.speaking_rate = QDoubleSpinBox()
        self.speaking_rate.setRange(0.25, 4.0)
        self.speaking_rate.setSingleStep(0.05)
        self.speaking_rate.setValue(tts.speaking_rate)
        self.speaking_rate.setSuffix(" ×")
        form.addRow("", self.tts_enabled)
        form.addRow("Voice &engine:", self.tts_backend)
        form.addRow("&Voice:", self.tts_voice)
        form.addRow("Speaking &rate:", self.speaking_rate)
        return page

    def _window_tab(self) -> QWidget:
        gui = self.settings.gui
        page = QWidget()
        form = QFormLayout(page)
        self.click_to_toggle = QCheckBox("Click to start and click again to send "
                                         "(instead of holding)")
        self.click_to_toggle.setChecked(gui.click_to_toggle)
        self.font_scale = QDoubleSpinBox()
        self.font_scale.setRange(0.5, 4.0)
        self.font_scale.setSingleStep(0.1)
        self.font_scale.setValue(gui.font_scale)
        self.font_scale.setSuffix(" ×")
        self.kiosk_exit_keys = QLineEdit(gui.kiosk_exit_keys)
        form.addRow("", self.click_to_toggle)
        form.addRow("Text &size:", self.font_scale)
        form.addRow("&Leave kiosk with:", self.kiosk_exit_keys)
        return page

    # --- saving -------------------------------------------------------------------------------

    def edited_settings(self) -> Settings:
        """The settings as edited; raises `ConfigError` for a value the config would reject."""
        s = self.settings
        s = replace(s, "audio", input_device=_value(self.input_device),
                    output_device=_value(self.output_device), beeps=self.beeps.isChecked())
        s = replace(s, "stt", backend=_value(self.stt_backend), model=_value(self.stt_model))
        s = replace(s, "wake", enabled=self.wake_enabled.isChecked(),
                    phrase=self.wake_phrase.text().strip())
        s = replace(s, "engine", backend=_value(self.engine_backend),
                    model=_value(self.engine_model),
                    system_prompt=self.system_prompt.toPlainText().strip())
        s = replace(s, "history", enabled=self.history_enabled.isChecked())
        s = replace(s, "tts", enabled=self.tts_enabled.isChecked(),
                    backend=_value(self.tts_backend), voice=_value(self.tts_voice),
                    speaking_rate=round(self.speaking_rate.value(), 2))
        return replace(s, "gui", click_to_toggle=self.click_to_toggle.isChecked(),
                       font_scale=round(self.font_scale.value(), 2),
                       kiosk_exit_keys=self.kiosk_exit_keys.text().strip() or "Ctrl+Alt+Q")

    @Slot()
    def save(self) -> None:
        try:
            settings = self.edited_settings()
            save_settings(settings, self.config_path)
        except ConfigError as exc:
            self._show_problem(str(exc).replace(f"{self.settings.source}: ", ""))
            return
        except OSError as exc:
            self._show_problem(f"Cannot write {self.config_path}: {exc.strerror}")
            return
        self.settings = settings
        self.saved.emit(settings)
        self.accept()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()

    @Slot()
    def _start_test(self) -> None:
        try:
            settings = replace(self.settings, "audio", input_device=_value(self.input_device),
                               output_device=_value(self.output_device))
        except ConfigError as exc:
            self.test_result.setText(str(exc))
            return
        self.test_button.setEnabled(False)
        self.test_result.setText(f"Recording for {TEST_RECORD_SECONDS:.0f} s… say something.")
        self._mic_test.run(settings)

    @Slot(str)
    def _on_test_finished(self, text: str) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setText(text)
