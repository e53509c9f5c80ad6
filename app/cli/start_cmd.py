"""`hearth start` (what `make run` runs): the GUI when a display is available,
otherwise the voice/text loop in the terminal — saying which, and why."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from app.config import Settings


def display_problem() -> str:
    """Why the GUI cannot start here, or "" when it can."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    if importlib.util.find_spec("PySide6") is None:
        return "PySide6 is not installed (pip install 'hearth[gui]')"
    return ""


def run(args: argparse.Namespace, settings: Settings) -> int:
    problem = display_problem()
    if not problem:
        from app.cli.gui_cmd import run as run_gui

        args.kiosk = settings.gui.kiosk
        return run_gui(args, settings)
    print(f"hearth: {problem}: starting the terminal loop instead.", file=sys.stderr)
    from app.cli.headless_cmd import run as run_headless

    return run_headless(args, settings)
