"""`hearth gui [--kiosk]`: the desktop window (or the fullscreen kiosk) with the bundled models.

The window appears at once; `build_assistant` then runs on a worker thread (the
window shows a busy state meanwhile). A missing microphone or speaker does not stop
the GUI: typing still works, and a banner says what is missing.
"""

from __future__ import annotations

import argparse
import logging
import os

from app.config import Settings
from app.errors import HearthError

log = logging.getLogger(__name__)


def ram_tier_text() -> str:
    """This machine's RAM tier as the model catalog names it, e.g. "large (23.4 GiB)"."""
    from app.models.store import ModelStore
    from app.models.tiers import detect_memory, format_bytes, tier_for

    try:
        memory = detect_memory()
        tier = tier_for(ModelStore().catalog, memory)
    except HearthError as exc:
        log.warning("no RAM tier: %s", exc)
        return ""
    return f"{tier.name} ({format_bytes(memory.usable_bytes)})"


def build_assistant(settings: Settings):  # -> tuple[Assistant, SessionInfo]
    """The real pipeline with the configured (by default the bundled) models.

    Runs on a worker thread. Engine failures raise (the window shows them); a missing
    microphone, recognizer, voice or speaker only disables that part, and the assistant
    says so with a `Notice` (shown as a banner) when it starts.
    """
    from app.assistant.build import build_assistant as build_pipeline
    from app.gui.session import SessionInfo
    from app.stack import choose_stack

    stack = choose_stack(settings)  # the same choice `hearth doctor` reports
    assistant, choice = build_pipeline(settings, stack=stack)
    model_name = "?"
    if choice is not None:
        model_name = choice.model_id or (choice.model_path.name if choice.model_path else "?")
    mode = f" ({stack.memory_mode})" if stack.memory_mode else ""
    info = SessionInfo(
        engine=(choice.backend + mode) if choice else "?",
        model=model_name,
        ram_tier=ram_tier_text(),
        speech=", ".join(
            [stack.recognizer if assistant.recognizer is not None else "no recognizer",
             stack.voice if assistant.synthesizer is not None else "no voice"]),
        why=stack.explain(),
        has_microphone=assistant.microphone is not None,
        speaks=assistant.speaker is not None,
        notices=(),
    )
    return assistant, info


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Open the window; returns when it is closed."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") \
            and not os.environ.get("QT_QPA_PLATFORM"):
        raise HearthError("no display found (DISPLAY is not set); use: hearth headless")
    from app.config import default_config_path
    from app.gui.app import run_gui

    kiosk = bool(getattr(args, "kiosk", False)) or settings.gui.kiosk
    config_path = getattr(args, "config", None) or default_config_path()
    return run_gui(settings, build_assistant, kiosk=kiosk, config_path=config_path)
