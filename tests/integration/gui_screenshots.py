"""Screenshots of the GUI for the README: `python -m tests.integration.gui_screenshots OUT_DIR`.

main_window.png and kiosk_800x480.png are real runs of `hearth gui` with the bundled
models (greedy replies, so a run on the same machine gives the same words), each on a
private Xvfb screen with a private PulseAudio as the user's sound server, driven the
way tests/acceptance/test_gui_real.py drives it: a question typed with real key
presses, questions spoken (Hearth's own voice, `hearth say`) into the microphone while
the space bar is held, pictures grabbed from the X server. settings.png and
model_manager.png are the two dialogs, opened in this process on another Xvfb screen.
Needs Xvfb, xdotool and PulseAudio (make test installs them); prints each picture's
path and, for the real runs, the conversation the window showed (one JSON line).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Home, run_hearth
from tests.acceptance.gui_driver import Gui, XServer
from tests.acceptance.sound import SoundServer

CONFIG = """\
[engine]
temperature = 0.0
"""
"""Greedy replies; everything else is what a new user gets."""

TYPED = "How many days are in a week?"
SPOKEN = "What do bees make?"
KIOSK_SPOKEN = "What is the opposite of hot?"


class Desk:
    """A temporary home, its sound server and an X screen, for one real run."""

    def __init__(self, base: Path, screen: str) -> None:
        self.base = base
        self.home = Home(base / "home")
        self.home.write_config(CONFIG)
        runtime = base / "run-user"
        runtime.mkdir(mode=0o700)
        self.sound = SoundServer(runtime, self.home.path)
        self.sound.start()
        self.env = {**self.home.env, "XDG_RUNTIME_DIR": str(runtime)}
        self.x = XServer(screen)

    def spoken(self, text: str) -> Path:
        wav = self.base / f"{abs(hash(text))}.wav"
        done = run_hearth(["say", text, "--out", str(wav)], self.home)
        if done.returncode != 0:
            raise RuntimeError(f"hearth say failed: {done.stderr}")
        return wav

    @contextlib.contextmanager
    def gui(self, *args: str) -> Iterator[Gui]:
        gui = Gui(["gui", *args], display=self.x.display, env=self.env, cwd=self.home.path,
                  dump=self.base / "window.json", log=self.base / "gui.log")
        try:
            gui.wait_ready()
            yield gui
            gui.quit("ctrl+alt+q" if "--kiosk" in args else "ctrl+q")
        finally:
            gui.kill()

    def close(self) -> None:
        self.x.stop()
        self.sound.stop()


def ask_by_voice(gui: Gui, sound: SoundServer, wav: Path, turns: int,
                 idle: bool = True) -> dict[str, Any]:
    """Hold the space bar, say the question, let go: the reply."""
    gui.hold_space()
    gui.wait_until(lambda s: s["state"] == "LISTENING", "listening")
    sound.speak(wav)
    gui.release_space()
    return gui.wait_reply(turns, idle=idle)


def main_window(out: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """A typed question answered, then a spoken one, pictured while its reply is spoken."""
    desk = Desk(work, "1280x800x24")
    try:
        spoken = desk.spoken(SPOKEN)
        with desk.gui() as gui:
            gui.type_question(TYPED)
            gui.wait_reply(1)
            shown = ask_by_voice(gui, desk.sound, spoken, 2, idle=False)
            path = gui.screenshot(out / "main_window.png")
        return path, shown
    finally:
        desk.close()


def kiosk(out: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """A spoken question on the touchscreen, pictured while its reply is spoken."""
    desk = Desk(work, "800x480x24")  # the Raspberry Pi touchscreen
    try:
        spoken = desk.spoken(KIOSK_SPOKEN)
        with desk.gui("--kiosk") as gui:
            shown = ask_by_voice(gui, desk.sound, spoken, 1, idle=False)
            path = gui.screenshot(out / "kiosk_800x480.png")
        return path, shown
    finally:
        desk.close()


def dialogs(out: Path) -> list[Path]:
    """The settings and model manager dialogs, in this process on an Xvfb screen."""
    x = XServer("1280x800x24")
    os.environ.update({"DISPLAY": x.display, "QT_QPA_PLATFORM": "xcb"})
    try:
        from app.config import Settings
        from app.gui.app import create_application
        from app.gui.model_manager import ModelManagerDialog
        from app.gui.settings_dialog import SettingsDialog

        create_application()
        settings = SettingsDialog(Settings(), Path("~/.config/hearth/config.toml").expanduser())
        settings.tabs.setCurrentIndex(2)  # the assistant tab: engine, model, prompt, history
        manager = ModelManagerDialog(Settings())
        manager.resize(980, 470)
        manager.select("tinyllama-1.1b-chat-q4_k_m")
        return [grab_dialog(settings, out / "settings.png"),
                grab_dialog(manager, out / "model_manager.png")]
    finally:
        x.stop()


def grab_dialog(dialog: Any, path: Path) -> Path:
    from PySide6.QtCore import QEventLoop, QTimer

    dialog.show()
    loop = QEventLoop()
    QTimer.singleShot(300, loop.quit)  # layouts and paints
    loop.exec()
    # PNG quality 0 is Qt's strongest compression (the files are committed)
    if not dialog.grab().toImage().save(str(path), "PNG", 0):
        raise OSError(f"could not write {path}")
    dialog.close()
    return path


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hearth-shots-") as work:
        for name, shoot in (("main_window", main_window), ("kiosk", kiosk)):
            started = time.monotonic()
            path, shown = shoot(out, Path(work) / name)
            print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
            print(path)
            print(json.dumps({"shot": path.name, "messages": shown["messages"],
                              "status": shown["status"]}, ensure_ascii=False))
    for path in dialogs(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
