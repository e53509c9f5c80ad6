"""The speaker volume, through PulseAudio's `pactl` (the default sink, which is where
Hearth's voice plays unless [audio] output_device picks another)."""

from __future__ import annotations

import re
import shutil
import subprocess

STEP_PERCENT = 10
"""How much "louder" / "quieter" changes the volume."""


class VolumeControl:
    """Sets and reads the default sink's volume; every method returns the new level in
    percent, or None when there is no PulseAudio (or `pactl`) to ask."""

    def __init__(self, pactl: str | None = None) -> None:
        self._pactl = pactl or shutil.which("pactl")

    def _run(self, *args: str) -> str | None:
        if self._pactl is None:
            return None
        try:
            done = subprocess.run([self._pactl, *args], capture_output=True, text=True,
                                  timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    def level(self) -> int | None:
        out = self._run("get-sink-volume", "@DEFAULT_SINK@")
        found = re.search(r"(\d+)%", out or "")
        return int(found.group(1)) if found else None

    def set(self, percent: int) -> int | None:
        percent = max(0, min(100, percent))
        if self._run("set-sink-volume", "@DEFAULT_SINK@", f"{percent}%") is None:
            return None
        return self.level()

    def step(self, up: bool) -> int | None:
        current = self.level()
        if current is None:
            return None
        return self.set(current + (STEP_PERCENT if up else -STEP_PERCENT))
