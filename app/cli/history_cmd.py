"""`hearth history list | show ID | export --format jsonl | clear`: the local history."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.config import Settings
from app.errors import HistoryError
from app.history import History


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _flags(turn: dict[str, Any]) -> str:
    if not turn["complete"]:
        return " (unfinished)"
    return " (interrupted)" if turn["interrupted"] else ""


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.history.enabled and args.history_command != "clear":
        print(f"History is switched off ([history] enabled = false in {settings.source}).",
              file=sys.stderr)
    path = settings.history_path
    if not path.exists():
        if args.history_command == "show":
            raise HistoryError(f"there is no history yet ({path} does not exist)")
        if args.history_command != "export":
            print(f"No history yet ({path}).")
        return 0
    with History(path) as history:
        command = args.history_command
        if command == "list":
            for turn in history.recent(args.limit):
                print(f"{turn['id']:>5}  {turn['started_at'][:19].replace('T', ' ')}  "
                      f"{_short(turn['user_text'], 40)!s:<40}  "
                      f"{_short(turn['reply'], 50)}{_flags(turn)}")
        elif command == "show":
            turn = history.get(args.turn)
            for key, value in turn.items():
                print(f"{key:>18}: {value}")
        elif command == "export":
            if args.out:
                with args.out.open("w", encoding="utf-8") as out:
                    count = history.export_jsonl(out)
                print(f"wrote {count} turns to {args.out}", file=sys.stderr)
            else:
                history.export_jsonl(sys.stdout)
        elif command == "clear":
            if not args.yes:
                answer = input(f"Delete all {history.count()} turns in {path}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("Nothing deleted.")
                    return 1
            print(f"Deleted {history.clear()} turns.")
    return 0
