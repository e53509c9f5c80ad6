"""`hearth ask --text T | --wav IN.wav [--out OUT.wav] [--json]`: one question, one reply.

Text mode streams the reply to stdout as it is written; `--wav` runs a full voice
turn without audio devices (recognition, reply, synthesis into `--out`). `--json`
prints one object instead (keys: `app.file_mode.RESULT_KEYS`, documented in the
README). Engine flags (`--engine`, `--model`, `--temperature`, `--max-tokens`,
`--seed`, `--memory-mode`) apply to this run only.
"""

from __future__ import annotations

import argparse
import json
import sys

from app.assistant.build import leave_a_core_for_the_voice
from app.config import Settings, replace
from app.engine_setup import build_engine
from app.errors import HistoryError
from app.file_mode import run_file_turn
from app.history import History
from app.skills import build_skills
from app.speech_setup import build_recognizer, build_synthesizer
from app.stack import choose_stack


def with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with this run's --temperature / --max-tokens / --seed / --memory-mode
    applied."""
    changes = {key: value for key, value in (("temperature", args.temperature),
                                             ("max_tokens", args.max_tokens),
                                             ("seed", args.seed),
                                             ("memory_mode", args.memory_mode))
               if value is not None}
    return replace(settings, "engine", **changes) if changes else settings


def warn(text: str) -> None:
    """One line on stderr that does not end up inside a reply streamed to stdout."""
    sys.stdout.flush()
    print(f"hearth: warning: {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_overrides(settings, args)
    speak = args.out is not None or (args.wav is not None and args.json)
    if speak:
        settings = leave_a_core_for_the_voice(settings)
    stack = choose_stack(settings, engine=args.engine, model=args.model)  # as doctor says
    engine, choice = build_engine(settings, args.engine, args.model, stack=stack)
    recognizer = (build_recognizer(settings, stack.recognizer, stack.recognizer_model)
                  if args.wav else None)
    synthesizer = (build_synthesizer(settings, stack.voice, stack.voice_model)
                   if speak and settings.tts.enabled else None)
    stream = not args.json
    try:
        history = History.open(settings)
    except HistoryError as exc:  # e.g. a full disk: answer anyway, and say it is not saved
        history = None
        warn(str(exc))

    skills = build_skills(settings)  # the time, timers, arithmetic: before the engine

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        result = run_file_turn(
            settings, engine=engine, recognizer=recognizer, synthesizer=synthesizer,
            wav=args.wav, text=args.text, out=args.out, history=history,
            model_id=choice.model_id or (choice.model_path.name if choice.model_path else ""),
            on_token=show if stream else None, on_notice=lambda notice: warn(notice.text),
            skills=skills)
    finally:
        engine.close()
        if skills is not None:
            skills.close()
        if history is not None:
            history.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print()
    if args.wav is not None:
        print(f"(heard: {result['transcript']!r})", file=sys.stderr)
    if result["out"]:
        print(f"(spoken reply written to {result['out']})", file=sys.stderr)
    return 0
