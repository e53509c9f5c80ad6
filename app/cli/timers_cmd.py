"""`hearth timers list [--json] | cancel ID`: the timers, alarms and reminders Hearth keeps
(in its database, so this works while Hearth runs: a cancelled timer stops ringing)."""

from __future__ import annotations

import argparse
import json
import time

from app.config import Settings
from app.skills import timer_store
from app.skills.timers import countdown, local_time
from app.skills.wording import Responses


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = timer_store(settings)
    try:
        if args.timers_command == "cancel":
            timer = store.cancel(args.id)
            print(f"Cancelled {timer.kind} {timer.id}" + (f" ({timer.name})" if timer.name
                                                          else "") + ".")
            return 0
        timers = store.active()
    finally:
        store.close()
    now = time.time()
    if args.json:
        print(json.dumps([{
            "id": t.id, "kind": t.kind, "name": t.name, "message": t.message, "state": t.state,
            "ends_at": local_time(t.ends_at).isoformat(timespec="seconds"),
            "remaining_seconds": round(t.remaining(now), 1),
            "duration_seconds": t.duration_seconds} for t in timers], ensure_ascii=False))
        return 0
    if not timers:
        print("No timers, alarms or reminders.")
        return 0
    say = Responses.load("en")
    for t in timers:
        what = t.name or t.message or (say.duration(t.duration_seconds) if t.duration_seconds
                                       else "")
        print(f"{t.id:>4}  {t.kind:<8}  {t.state:<8}  {countdown(t.remaining(now)):>8} left  "
              f"at {local_time(t.ends_at):%Y-%m-%d %H:%M:%S}  {what}")
    return 0
