"""Screenshots of the GUI for the README: `python -m tests.integration.gui_screenshots OUT_DIR`.

Needs a real X display (run it under Xvfb with QT_QPA_PLATFORM=xcb; the offscreen
platform has no window decorations or fonts hinting like a desktop). Writes
main_window.png (a short conversation, then listening with a live partial
transcript), settings.png, model_manager.png and kiosk_800x480.png.

The conversation runs through the real `Assistant` pipeline and the real window, but
with the canned stages of tests/fakes.py, so the pictures are the same on every run
and every machine; the status bar shows what `hearth gui` reports for the bundled
model on this machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.assistant.pipeline import Assistant
from app.cli.gui_cmd import ram_tier_text
from app.config import Settings
from app.events import State
from app.gui.app import create_application
from app.gui.main_window import MainWindow
from app.gui.model_manager import ModelManagerDialog
from app.gui.session import SessionInfo
from app.gui.settings_dialog import SettingsDialog
from tests.fakes import (
    FakeEngine,
    FakeMicrophone,
    FakeRecognizer,
    FakeSpeaker,
    FakeSynthesizer,
    fake_settings,
)

REPLIES = (
    "Everything runs on this computer: I can answer questions, explain things and "
    "chat with you, and nothing you say leaves the machine.",
    "It is a quarter past ten in the morning.",
)
TRANSCRIPTS = ("what time is it", "set a timer for ten minutes")


def settle(ms: int = 150) -> None:
    """Let queued events, layouts and paints run."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_for(condition, timeout_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the GUI did not reach the expected state")
        settle(30)


def save(widget: QWidget, path: Path) -> Path:
    settle(300)
    # For PNG, Qt's quality 0 means the strongest compression (the files are committed).
    if not widget.grab().toImage().save(str(path), "PNG", 0):
        raise OSError(f"could not write {path}")
    return path


class Demo:
    """A window whose assistant runs the canned stages."""

    def __init__(self, settings: Settings, *, kiosk: bool = False,
                 transcripts: tuple[str, ...] = TRANSCRIPTS) -> None:
        self.microphone = FakeMicrophone()
        self.transcripts = transcripts
        self.window = MainWindow(settings, self._factory, kiosk=kiosk,
                                 config_path=Path("/tmp/hearth-screenshots.toml"))

    def _factory(self, settings: Settings) -> tuple[Assistant, SessionInfo]:
        assistant = Assistant(
            settings, engine=FakeEngine(list(REPLIES), token_seconds=0.01),
            recognizer=FakeRecognizer(self.transcripts), synthesizer=FakeSynthesizer(),
            microphone=self.microphone, speaker=FakeSpeaker(speed=0.05), warm_up=False)
        info = SessionInfo("llama-cpp", "smollm2-135m-instruct-q4_1", ram_tier_text())
        return assistant, info

    def start(self) -> None:
        self.window.start()
        wait_for(lambda: self.window.session.assistant is not None)

    def ask(self, text: str) -> None:
        count = len(self.window.model.messages())
        self.window.text_input.setText(text)
        self.window.send_text()
        self._wait_turn(count + 2)

    def speak(self, seconds: float = 0.4) -> None:
        count = len(self.window.model.messages())
        self.window.ptt.key_down()
        wait_for(lambda: self.window.state == State.LISTENING)
        self.microphone.say(seconds)
        settle(200)
        self.window.ptt.key_up()
        self._wait_turn(count + 2)

    def start_listening(self, seconds: float = 0.2) -> None:
        """Hold the button and say a few words: the partial transcript shows."""
        self.window.ptt.key_down()
        wait_for(lambda: self.window.state == State.LISTENING)
        self.microphone.say(seconds)
        wait_for(lambda: bool(self.window.model.messages())
                 and self.window.model.messages()[-1].pending)

    def _wait_turn(self, rows: int) -> None:
        model = self.window.model
        wait_for(lambda: len(model.messages()) >= rows and not model.messages()[-1].pending)
        wait_for(lambda: self.window.state == State.IDLE)

    def close(self) -> None:
        self.window.close()


def main_window(out: Path) -> Path:
    demo = Demo(fake_settings())
    demo.window.resize(840, 600)
    demo.window.show()
    demo.start()
    demo.ask("What can you do without the internet?")
    demo.speak()
    demo.start_listening()
    path = save(demo.window, out / "main_window.png")
    demo.close()
    return path


def kiosk(out: Path) -> Path:
    demo = Demo(fake_settings(), kiosk=True, transcripts=("what can you do offline",))
    demo.window.setFixedSize(800, 480)  # the Raspberry Pi touchscreen
    demo.window.show()
    demo.start()
    demo.speak()
    path = save(demo.window, out / "kiosk_800x480.png")
    demo.close()
    return path


def settings_dialog(out: Path) -> Path:
    dialog = SettingsDialog(Settings(), Path("~/.config/hearth/config.toml").expanduser())
    dialog.tabs.setCurrentIndex(2)  # the assistant tab: engine, model, prompt, history
    dialog.show()
    path = save(dialog, out / "settings.png")
    dialog.close()
    return path


def model_manager(out: Path) -> Path:
    dialog = ModelManagerDialog(Settings())
    dialog.resize(980, 470)
    dialog.show()
    dialog.select("tinyllama-1.1b-chat-q4_k_m")
    path = save(dialog, out / "model_manager.png")
    dialog.close()
    return path


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = create_application()
    if app.platformName() == "offscreen":
        print("note: the offscreen platform draws no window frames; use Xvfb + xcb",
              file=sys.stderr)
    for shoot in (main_window, settings_dialog, model_manager, kiosk):
        print(shoot(out))
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

