"""`hearth gui` on an X display with the real bundled models: a question typed into the
window (real key presses, xdotool) gets a real reply, shown in the window.

The reply is read from the window twice over: the bubbles its conversation view shows
(HEARTH_GUI_DUMP, see app/gui/dump.py) and the pixels the X server shows (the
conversation area changes when the reply appears). The user's sound server is a
private PulseAudio, so the window has a microphone and a speaker like a desktop's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from tests.acceptance.conftest import ROOT, Home
from tests.acceptance.gui_driver import Gui, XServer
from tests.acceptance.sound import SoundServer

QUESTION = "What is the capital of France?"


@pytest.fixture
def x_server() -> Iterator[XServer]:
    server = XServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def desktop(home: Home) -> Iterator[dict[str, str]]:
    """A desktop session's environment: the home and its sound server."""
    runtime = home.path / "run-user"
    runtime.mkdir(mode=0o700)
    sound = SoundServer(runtime, home.path)
    sound.start()
    try:
        yield {**home.env, "XDG_RUNTIME_DIR": str(runtime)}
    finally:
        sound.stop()


def changed_pixels(before: Path, after: Path) -> int:
    """Pixels that differ between two pictures of the same window (sampled every 2 px)."""
    a, b = QImage(str(before)), QImage(str(after))
    assert (a.width(), a.height()) == (b.width(), b.height())
    return sum(a.pixel(x, y) != b.pixel(x, y)
               for y in range(0, a.height(), 2) for x in range(0, a.width(), 2))


def test_typed_question_gets_a_real_reply_in_the_window(
        hearth: Path, home: Home, desktop: dict[str, str], x_server: XServer,
        tmp_path: Path) -> None:
    gui = Gui(["gui"], display=x_server.display, env=desktop, cwd=home.path,
              dump=tmp_path / "window.json", log=tmp_path / "gui.log")
    try:
        shown = gui.wait_ready()
        banner = shown["banner"].lower()
        assert "microphone" not in banner and "speaker" not in banner, banner  # both found
        status = " ".join(shown["status"])
        assert "llama" in status or "numpy" in status, status
        before = gui.screenshot(tmp_path / "before.png")
        gui.type_question(QUESTION)
        shown = gui.wait_reply(1)
        question, reply = shown["messages"][-2:]
        assert (question["role"], question["text"]) == ("user", QUESTION)
        assert reply["role"] == "assistant" and not reply["interrupted"]
        assert len(reply["text"].split()) >= 2, reply
        after = gui.screenshot(tmp_path / "after.png")
        assert changed_pixels(before, after) > 2000, "the reply did not show on the screen"
        assert gui.quit() == 0
    finally:
        gui.kill()


def test_make_run_with_a_display_opens_the_window(
        hearth: Path, home: Home, desktop: dict[str, str], x_server: XServer,
        tmp_path: Path) -> None:
    """README: `make run` opens the window when a display is available."""
    gui = Gui([], display=x_server.display, env=desktop, cwd=ROOT,
              dump=tmp_path / "window.json", log=tmp_path / "make.log", command=["make", "run"])
    try:
        gui.wait_ready()
        gui.type_question(QUESTION)
        gui.wait_reply(1)
        assert gui.quit() == 0  # make ends when the window is closed
    finally:
        gui.kill()
