"""`hearth headless`: the voice loop with no screen (GPIO button, keyboard key, wake word
or hands-free), e.g. as the systemd service in packaging/hearth.service."""

from __future__ import annotations

import argparse
import sys

from app.assistant.build import build_assistant
from app.config import Settings
from app.headless import HeadlessRunner


def run(args: argparse.Namespace, settings: Settings) -> int:
    assistant, _ = build_assistant(settings)
    try:
        return HeadlessRunner(settings, assistant, output=sys.stdout).run()
    finally:
        # free the models before the interpreter tears down (llama.cpp must not be freed
        # by a garbage collector racing interpreter shutdown)
        assistant.close()
