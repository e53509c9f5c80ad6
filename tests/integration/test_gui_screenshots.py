"""Screenshots under a private Xvfb display (the real xcb platform, not offscreen).

Runs tests/integration/gui_screenshots.py in a subprocess on its own X server and
checks the four pictures: right sizes, small enough to commit, and not blank. The
committed copies in docs/screenshots/ come from the same script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from PySide6.QtGui import QImage

from tests.conftest import ROOT

SHOTS = ("main_window.png", "settings.png", "model_manager.png", "kiosk_800x480.png")
MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
    """A private Xvfb server; its number is chosen by Xvfb itself (-displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def distinct_colours(image: QImage, step: int = 7) -> int:
    colours = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            colours.add(image.pixel(x, y))
    return len(colours)


def test_screenshots_of_every_window_under_xvfb(x_display, tmp_path, qapp):
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.gui_screenshots", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in SHOTS:
        path = tmp_path / name
        assert path.exists(), f"{name} was not written"
        assert path.stat().st_size < MAX_BYTES, f"{name} is too big to commit"
        image = QImage(str(path))
        assert not image.isNull()
        assert distinct_colours(image) > 20, f"{name} looks blank"
    kiosk = QImage(str(tmp_path / "kiosk_800x480.png"))
    assert (kiosk.width(), kiosk.height()) == (800, 480)
    main = QImage(str(tmp_path / "main_window.png"))
    assert main.width() >= 640 and main.height() >= 480
