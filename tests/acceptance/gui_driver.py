"""Driving the real `hearth gui` from outside, as a person at the screen would.

A private X server (Xvfb), the window found and typed into with xdotool (real X key
events: Tab to the question field, the question, Enter; the space bar held for
push-to-talk), pictures grabbed from the X server (a separate Qt process that knows
nothing of Hearth: `python -m tests.acceptance.gui_driver WINDOW_ID OUT.png`), and what
the window shows read from the file `hearth gui` keeps with HEARTH_GUI_DUMP set (the
bubbles of its conversation view, its state and status bar).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HEARTH = ROOT / ".venv" / "bin" / "hearth"
PYTHON = ROOT / ".venv" / "bin" / "python"


class XServer:
    """A private Xvfb display; its number is picked by Xvfb (-displayfd)."""

    def __init__(self, size: str = "1280x800x24") -> None:
        for tool in ("Xvfb", "xdotool"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (make test installs it)")
        read_fd, write_fd = os.pipe()
        # a held key must not repeat: the space bar held for push-to-talk would let go and
        # press again (Xvfb repeats keys held through XTEST like a keyboard's)
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp",
             "-ardelay", "600000", "-arinterval", "600000"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.process.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Gui:
    """`hearth ARGS` (gui) on `display`, with its window dump at `dump`; or `command`
    (such as `make run`) that starts it."""

    def __init__(self, args: list[str], *, display: str, env: Mapping[str, str], cwd: Path,
                 dump: Path, log: Path, command: list[str] | None = None) -> None:
        self.display = display
        self.dump = dump
        self.log = log
        environment = {**env, "DISPLAY": display, "HEARTH_GUI_DUMP": str(dump)}
        environment.pop("QT_QPA_PLATFORM", None)
        with log.open("wb") as out:
            self.process = subprocess.Popen(command or [str(HEARTH), *args], cwd=cwd,
                                            env=environment, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=out, start_new_session=True)
        self.window = self._find_window()

    def xdotool(self, *args: str) -> str:
        done = subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": self.display},
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"xdotool {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def _find_window(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            try:
                found = self.xdotool("search", "--onlyvisible", "--name", "^Hearth$")
            except RuntimeError:  # nothing found yet
                found = ""
            if found:
                return found.splitlines()[0]
            time.sleep(0.2)
        raise AssertionError(f"no Hearth window within {timeout:.0f} s: {self.log_tail()}")

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"hearth gui exited ({self.process.returncode}): "
                                 f"{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    # --- what the window shows ----------------------------------------------------------------

    def shown(self) -> dict[str, Any]:
        try:
            return json.loads(self.dump.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def wait_until(self, condition: Callable[[dict[str, Any]], bool], what: str,
                   timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            shown = self.shown()
            if shown and condition(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"the window never showed {what}: {self.shown()}\n{self.log_tail()}")

    def wait_ready(self) -> dict[str, Any]:
        return self.wait_until(lambda s: s["ready"] and s["state"] == "IDLE", "a loaded assistant")

    def wait_reply(self, turns: int, idle: bool = True) -> dict[str, Any]:
        """Until the window shows `turns` answered questions (the last one written out)
        and, with `idle`, has finished speaking."""
        def answered(shown: dict[str, Any]) -> bool:
            replies = [m for m in shown["messages"] if m["role"] == "assistant"]
            return (len(replies) >= turns and not replies[-1]["pending"]
                    and bool(replies[-1]["text"].strip())
                    and (shown["state"] == "IDLE" or not idle))
        return self.wait_until(answered, f"{turns} answered question(s)")

    # --- a person at the keyboard ---------------------------------------------------------------

    def focus(self) -> None:
        self.xdotool("windowfocus", "--sync", self.window)

    def tab_until(self, wanted: Callable[[str], bool], what: str) -> None:
        """Press Tab until the focused widget (its accessible name) is `wanted`."""
        self.focus()
        for _ in range(8):
            if wanted(self.shown().get("focus", "")):
                return
            self.xdotool("key", "Tab")
            time.sleep(0.4)  # the dump follows within 100 ms
        raise AssertionError(f"Tab never reached {what}: {self.shown()}")

    def type_question(self, text: str) -> None:
        self.tab_until(lambda name: name == "Question", "the question field")
        self.xdotool("type", "--delay", "20", text)
        self.xdotool("key", "Return")

    def hold_space(self) -> None:
        """Push-to-talk: the space bar held down, with the focus on the push-to-talk button
        or the conversation (in the question field, space types a space)."""
        self.tab_until(lambda name: name in ("Push to talk", "Conversation"),
                       "a place where space means talk")
        self.xdotool("keydown", "space")

    def release_space(self) -> None:
        self.xdotool("keyup", "space")

    def screenshot(self, out: Path, window: str | None = None) -> Path:
        """The window as the X server shows it, as a PNG."""
        done = subprocess.run(
            [str(PYTHON), "-m", "tests.acceptance.gui_driver", window or self.window, str(out)],
            cwd=ROOT, env={**os.environ, "DISPLAY": self.display, "QT_QPA_PLATFORM": "xcb",
                           "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"screenshot failed: {done.stderr[-1000:]}")
        return out

    def quit(self, keys: str = "ctrl+q", timeout: float = 20.0) -> int:
        """Ctrl+Q, as the menu says (in kiosk mode, [gui] kiosk_exit_keys); the exit code."""
        self.focus()
        self.xdotool("key", keys)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Whatever is left of it (its process group: make and its children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def grab(window_id: int, out: Path) -> int:
    """Save X window `window_id` as a PNG (run in its own process, on the X display)."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([sys.argv[0]])
    screen = app.primaryScreen()
    picture = screen.grabWindow(window_id)
    # PNG quality 0 is Qt's strongest compression (the README's pictures are committed)
    return 0 if not picture.isNull() and picture.save(str(out), "PNG", 0) else 1


if __name__ == "__main__":
    sys.exit(grab(int(sys.argv[1], 0), Path(sys.argv[2])))
