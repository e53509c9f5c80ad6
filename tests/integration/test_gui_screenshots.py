"""The README's screenshots script works: real runs of `hearth gui` on private Xvfb screens
(tests/integration/gui_screenshots.py) give four pictures of the right sizes, small
enough to commit and not blank, and the conversations pictured hold real replies.
The committed copies in docs/screenshots/ come from the same script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

from tests.conftest import ROOT

SHOTS = ("main_window.png", "settings.png", "model_manager.png", "kiosk_800x480.png")
MAX_BYTES = 300_000


def distinct_colours(image: QImage, step: int = 7) -> int:
    colours = set()
    for y in range(0, image.height(), step):
        for x in range(0, image.width(), step):
            colours.add(image.pixel(x, y))
    return len(colours)


@pytest.mark.slow
def test_screenshots_of_real_runs_under_xvfb(tmp_path, qapp):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.gui_screenshots", str(tmp_path)],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
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
    shown = {c["shot"]: c for c in (json.loads(line) for line in done.stdout.splitlines()
                                     if line.startswith("{"))}
    for name, turns in (("main_window.png", 2), ("kiosk_800x480.png", 1)):
        messages = shown[name]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * turns
        assert all(m["text"].strip() and not m["interrupted"] for m in messages), messages
