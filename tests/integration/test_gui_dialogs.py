"""The settings dialog and the model manager (offscreen Qt, real config files, a real store
downloading from a throttled HTTP server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from app.config import Settings, load_settings, replace
from app.errors import ModelNotInstalledError
from app.gui.main_window import MainWindow
from app.gui.model_manager import ModelManagerDialog
from app.gui.settings_dialog import SettingsDialog
from app.models.catalog import parse_catalog
from app.models.store import ModelStore
from app.models.tiers import MachineMemory
from tests.integration.pulse import pulse_server  # noqa: F401 - the fixture

PAYLOAD = bytes(range(256)) * 4096 * 4  # 4 MiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
CHUNK = 64 * 1024
WAIT_MS = 20_000


@pytest.fixture
def slow_server() -> Iterator[dict[str, float]]:
    """Serves PAYLOAD at /tiny.gguf in chunks, pausing `pause` seconds between them."""
    control = {"pause": 0.0, "port": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            start = 0
            if self.headers.get("Range"):
                start = int(self.headers["Range"][6:].split("-")[0])
            body = PAYLOAD[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for offset in range(0, len(body), CHUNK):
                    self.wfile.write(body[offset:offset + CHUNK])
                    time.sleep(control["pause"])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client cancelled

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    control["port"] = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield control
    httpd.shutdown()
    httpd.server_close()


def tiny_store(tmp_path: Path, port: int) -> ModelStore:
    catalog = parse_catalog({"model": [
        {"id": "tiny", "kind": "llm", "name": "Tiny test model", "engines": ["numpy"],
         "languages": ["en"], "license": "MIT", "ram_bytes": 300 * 2**20, "path": "tiny.gguf",
         "files": [{"name": "tiny.gguf", "size": len(PAYLOAD), "sha256": PAYLOAD_SHA}],
         "sources": [{"type": "url", "urls": {"tiny.gguf": f"http://127.0.0.1:{port}/tiny.gguf"}}]},
        {"id": "huge", "kind": "llm", "name": "Huge model", "engines": ["llama-cpp"],
         "languages": ["en", "zh"], "license": "Apache-2.0", "ram_bytes": 64 * 2**30,
         "path": "huge.gguf", "files": [{"name": "huge.gguf", "size": 40 * 2**30}],
         "sources": [{"type": "url", "urls": {"huge.gguf": "http://127.0.0.1:9/huge.gguf"}}]},
    ]}, source="test catalog")
    return ModelStore(root=tmp_path / "models", catalog=catalog)


FOUR_GB = MachineMemory(total_bytes=4 * 2**30, available_bytes=3 * 2**30, simulated=True)


def cell(dialog: ModelManagerDialog, model_id: str, column: int) -> str:
    row = [e.id for e in dialog.entries].index(model_id)
    return dialog.table.item(row, column).text()


def test_model_manager_shows_size_license_language_and_fit(qtbot, tmp_path, slow_server):
    dialog = ModelManagerDialog(Settings(), store=tiny_store(tmp_path, slow_server["port"]),
                                memory=FOUR_GB)
    qtbot.addWidget(dialog)
    assert [cell(dialog, "tiny", c) for c in range(8)] == [
        "Tiny test model", "Chat model", "4 MB", "300 MB", "en", "MIT", "fits", ""]
    assert cell(dialog, "huge", 2) == "40.0 GB"
    assert cell(dialog, "huge", 4) == "en, zh"
    assert cell(dialog, "huge", 6) == "does not fit"


def test_install_verify_and_remove_with_progress_off_the_gui_thread(qtbot, tmp_path,
                                                                     slow_server, monkeypatch):
    slow_server["pause"] = 0.01
    store = tiny_store(tmp_path, slow_server["port"])
    dialog = ModelManagerDialog(Settings(), store=store, memory=FOUR_GB)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select("tiny")
    assert dialog.install_button.isEnabled() and not dialog.remove_button.isEnabled()
    progress_values: list[int] = []
    dialog.progress.valueChanged.connect(progress_values.append)
    qtbot.mouseClick(dialog.install_button, Qt.MouseButton.LeftButton)
    assert dialog.cancel_button.isEnabled(), "the GUI thread came back while installing"
    qtbot.waitUntil(lambda: cell(dialog, "tiny", 7) == "✓ installed", timeout=WAIT_MS)
    assert any(0 < v < 1000 for v in progress_values), "the bar moved during the download"
    assert store.is_installed("tiny")
    assert not dialog.progress.isVisible()

    qtbot.mouseClick(dialog.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "matches its checksum" in dialog.status.text(), timeout=WAIT_MS)
    assert dialog.verify_button.isEnabled(), "ready for the next operation at once"

    (store.path("tiny")).write_bytes(b"corrupted")
    qtbot.mouseClick(dialog.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "bytes, expected" in dialog.status.text(), timeout=WAIT_MS)
    assert dialog.status.text().startswith("tiny: tiny.gguf has 9 bytes")

    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert not store.is_installed("tiny")
    assert cell(dialog, "tiny", 7) == ""


def test_cancel_stops_an_install(qtbot, tmp_path, slow_server):
    slow_server["pause"] = 0.05  # about 1.3 MB/s: the 4 MiB download takes seconds
    store = tiny_store(tmp_path, slow_server["port"])
    dialog = ModelManagerDialog(Settings(), store=store, memory=FOUR_GB)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select("tiny")
    qtbot.mouseClick(dialog.install_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: 0 < dialog.progress.value() < 1000, timeout=WAIT_MS)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.worker.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "cancel" in dialog.status.text().lower(), timeout=WAIT_MS)
    assert not store.is_installed("tiny")
    assert dialog.install_button.isEnabled(), "it can be installed again (and resumes)"


def test_settings_dialog_writes_the_config_file(qtbot, tmp_path):
    path = tmp_path / "config.toml"
    dialog = SettingsDialog(Settings(), path)
    qtbot.addWidget(dialog)
    saved: list[Settings] = []
    dialog.saved.connect(saved.append)
    dialog.system_prompt.setPlainText("You are a pirate. Answer briefly.")
    dialog.speaking_rate.setValue(1.5)
    dialog.click_to_toggle.setChecked(True)
    dialog.history_enabled.setChecked(False)
    dialog.wake_enabled.setChecked(True)
    dialog.wake_phrase.setText("hey computer")
    dialog.stt_backend.setCurrentIndex(dialog.stt_backend.findData("vosk"))
    dialog.engine_backend.setCurrentIndex(dialog.engine_backend.findData("numpy"))
    dialog.save()
    assert path.exists()
    loaded = load_settings(path)
    assert loaded.engine.system_prompt == "You are a pirate. Answer briefly."
    assert loaded.engine.backend == "numpy"
    assert loaded.tts.speaking_rate == 1.5
    assert loaded.gui.click_to_toggle is True
    assert loaded.history.enabled is False
    assert (loaded.wake.enabled, loaded.wake.phrase) == (True, "hey computer")
    assert loaded.stt.backend == "vosk"
    assert saved == [loaded]


def test_a_bad_value_is_shown_in_the_dialog_and_nothing_is_written(qtbot, tmp_path):
    path = tmp_path / "config.toml"
    dialog = SettingsDialog(Settings(), path)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.engine_model.setEditText(str(tmp_path / "missing.gguf"))
    dialog.save()
    assert not path.exists()
    assert dialog.isVisible()
    assert "missing.gguf" in dialog.problem.text()
    assert QApplication.activeModalWidget() is None


def test_saved_settings_apply_without_a_restart(qtbot, tmp_path):
    loads: list[Settings] = []

    def factory(settings: Settings):
        loads.append(settings)
        raise RuntimeError("not needed for this test")

    window = MainWindow(Settings(), factory, config_path=tmp_path / "config.toml")
    qtbot.addWidget(window)
    window.start()
    qtbot.waitUntil(lambda: len(loads) == 1, timeout=WAIT_MS)
    assert window.ptt.text() == "Hold to talk"
    window.apply_settings(replace(Settings(), "gui", click_to_toggle=True))
    assert window.ptt.text() == "Tap to talk", "window options apply at once"
    qtbot.wait(100)
    assert len(loads) == 1, "a window-only change does not reload the pipeline"
    window.apply_settings(replace(window.settings, "engine", system_prompt="Be brief."))
    qtbot.waitUntil(lambda: len(loads) == 2, timeout=WAIT_MS)
    assert loads[-1].engine.system_prompt == "Be brief."
    window.close()


def test_the_window_opens_both_dialogs_and_retries_a_failed_load(qtbot, tmp_path):
    loads: list[Settings] = []

    def factory(settings: Settings):
        loads.append(settings)
        raise ModelNotInstalledError("smollm2-135m-instruct-q4_1")

    window = MainWindow(Settings(), factory, config_path=tmp_path / "config.toml")
    qtbot.addWidget(window)
    window.show()
    window.start()
    qtbot.waitUntil(lambda: "hearth models install" in window.banner.text, timeout=WAIT_MS)
    assert window.state_indicator.label.text() == "Something went wrong"
    window.settings_action.trigger()
    settings_dialog = window.findChild(SettingsDialog)
    assert settings_dialog is not None and settings_dialog.isVisible()
    settings_dialog.reject()
    window.models_action.trigger()
    manager = window.findChild(ModelManagerDialog)
    assert manager is not None and manager.table.rowCount() > 0
    manager.reject()
    qtbot.waitUntil(lambda: len(loads) == 2, timeout=WAIT_MS)
    window.close()


def write_tone(path: Path, seconds: float = 4.0, rate: int = 48000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.4 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def test_microphone_test_records_and_plays_back(qtbot, tmp_path, pulse_server):  # noqa: F811
    pulse_server.activate()
    settings = replace(Settings(), "audio", input_device=pulse_server.device,
                       output_device=pulse_server.device)
    dialog = SettingsDialog(settings, tmp_path / "config.toml")
    qtbot.addWidget(dialog)
    dialog.show()
    tone = write_tone(tmp_path / "tone.wav")
    with pulse_server.recording_speaker() as played:
        player = pulse_server.play_wav_to_mic(tone, wait=False)
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert not dialog.test_button.isEnabled()
        assert "Recording" in dialog.test_result.text()
        qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=30_000)
        player.wait(30)
    assert dialog.test_result.text() == "Recorded and played 3.0 s.", dialog.test_result.text()
    assert np.abs(played[0].to_float()).max() > 0.1, "the tone came out of the speaker"
