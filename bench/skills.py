"""Task success of the skills on spoken requests, with the bundled stack: each request is
spoken by the stack's voice (Piper joe), recognized by its recognizer (what
`choose_stack` picks here, as `hearth ask` does: Whisper tiny.en, or PocketSphinx with
`--stt pocketsphinx`) and answered by a full file-mode turn (skills first, SmolLM2-135M
on llama.cpp for the rest), exactly as `hearth ask --wav`.

Run: `python -m bench.skills [--limit N] [--stt whisper|pocketsphinx|vosk]`. A request
succeeds when the turn took the right action or gave the exact answer: the expected
intent with the expected slots (the timer's duration and name, the alarm's time, the
arithmetic's result, the time of day at the bench's fixed clock). Spoken general
questions are counted too: a skill must not capture them. Target: >= 90% task success.
Writes bench/results/skills.json and bench/results/skills.md (skills-STT.* with --stt).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SUCCESS = 0.90
NOW = datetime(2026, 12, 1, 9, 58, 30).astimezone().timestamp()
"""The skills' clock during the bench (so "what time is it" has one exact answer)."""

# request | intent | expected slots (s= is duration_seconds, msg= is message)
REQUESTS = """
What time is it? | HassGetCurrentTime | time=09:58
What's the time? | HassGetCurrentTime | time=09:58
Tell me the time. | HassGetCurrentTime | time=09:58
What's the date today? | HassGetCurrentDate | date=2026-12-01
What day is it? | HassGetCurrentDate | date=2026-12-01
Set a timer for five minutes. | HassStartTimer | s=300
Set a timer for ten minutes. | HassStartTimer | s=600
Set a timer for thirty seconds. | HassStartTimer | s=30
Set a timer for one hour. | HassStartTimer | s=3600
Set a timer for twenty minutes. | HassStartTimer | s=1200
Start a timer for three minutes. | HassStartTimer | s=180
Set a pasta timer for ten minutes. | HassStartTimer | s=600, name=pasta
Set an egg timer for six minutes. | HassStartTimer | s=360, name=egg
Set a rice timer for fifteen minutes. | HassStartTimer | s=900, name=rice
Set a timer for half an hour. | HassStartTimer | s=1800
Cancel the timer. | HassCancelTimer |
Cancel the pasta timer. | HassCancelTimer | name=pasta
Stop the timer. | HassCancelTimer |
Cancel all timers. | HassCancelAllTimers |
How much time is left on the timer? | HassTimerStatus |
How much time is left? | HassTimerStatus |
Pause the timer. | HassPauseTimer |
Resume the timer. | HassUnpauseTimer |
Add two minutes to the timer. | HassIncreaseTimer | s=120
Set an alarm for seven a.m. | HearthSetAlarm | time=07:00
Set an alarm for six thirty a.m. | HearthSetAlarm | time=06:30
Wake me up at six a.m. | HearthSetAlarm | time=06:00
Set an alarm for nine p.m. | HearthSetAlarm | time=21:00
Cancel my alarm. | HearthCancelAlarm |
Remind me to call mom in ten minutes. | HearthSetReminder | msg=call mom, s=600
Remind me to check the oven in five minutes. | HearthSetReminder | msg=check the oven, s=300
What is two plus two? | HearthArithmetic | result=4
What is seven times eight? | HearthArithmetic | result=56
What is one hundred divided by four? | HearthArithmetic | result=25
What is fifteen percent of eighty? | HearthArithmetic | result=12
What is nine minus three? | HearthArithmetic | result=6
What is the square root of sixty four? | HearthArithmetic | result=8
How many ounces in a pound? | HearthConvertUnit | result=16
Convert five miles to kilometers. | HearthConvertUnit | result=8.05
How many teaspoons in a tablespoon? | HearthConvertUnit | result=3
How many grams in a kilogram? | HearthConvertUnit | result=1000
Repeat that. | HearthRepeat |
Say that again. | HearthRepeat |
Stop. | HearthStop |
Never mind. | HassNevermind |
Turn the volume up. | HassSetVolumeRelative | volume_step=up
Set the volume to fifty percent. | HassSetVolume | volume_level=50
"""

GENERAL = (
    "What is the capital of France?",
    "Tell me a joke.",
    "How do I boil an egg?",
    "Who wrote Romeo and Juliet?",
    "What is the tallest mountain in the world?",
    "Tell me about timers in cooking.",
    "Why is the sky blue?",
    "What time is it in Tokyo?",
)
_SHORT = {"s": "duration_seconds", "msg": "message"}


def requests() -> list[tuple[str, str, dict[str, str]]]:
    rows = []
    for line in REQUESTS.strip().splitlines():
        text, intent, slots = (part.strip() for part in line.split("|"))
        pairs = (pair.strip().split("=", 1) for pair in slots.split(",") if pair.strip())
        rows.append((text, intent, {_SHORT.get(k, k): v for k, v in pairs}))
    return rows


def _markdown(summary: dict[str, Any], meta: dict[str, Any],
              rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Skills: task success on spoken requests",
        "",
        f"{meta['when']}, {meta['machine']}, {meta['cpus']} CPUs, stack: {meta['stack']}",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| task success (right action or exact answer) | "
        f"{summary['successes']}/{summary['requests']} = {summary['task_success']:.1%} | "
        f">= {TARGET_SUCCESS:.0%} |",
        f"| transcribed word for word | {summary['exact_transcripts']}/{summary['requests']} "
        "| |",
        f"| general questions captured by a skill | {summary['general_captured']}/"
        f"{summary['general']} | 0 |",
        f"| skill answer, end of speech -> first token (median) | "
        f"{summary['skill_first_token_ms_median']:.0f} ms | |",
        "",
        "| request | heard | intent | ok |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['request']} | {row['transcript']} | {row['intent'] or '-'} "
                     f"{row['slots'] or ''} | {'yes' if row['ok'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def run_skills_bench(limit: int | None = None, stt: str | None = None) -> int:
    """Speak, recognize and answer every request; print and save the summary."""
    from app.config import Settings, replace
    from app.engine_setup import build_engine
    from app.file_mode import run_file_turn
    from app.skills.intents import IntentMatcher
    from app.skills.skillset import SkillSet
    from app.skills.timers import TimerStore
    from app.speech_setup import build_recognizer, build_synthesizer
    from app.stack import choose_stack
    from speech.audio import AudioChunk
    from speech.wav import write_wav

    settings = replace(replace(Settings(), "engine", temperature=0.0, seed=1, max_tokens=16,
                               threads=1), "history", enabled=False)
    stack = choose_stack(settings, engine="llama-cpp", model="smollm2-135m-instruct-q4_1")
    engine, choice = build_engine(settings, "llama-cpp", "smollm2-135m-instruct-q4_1",
                                  stack=stack)
    recognizer = (build_recognizer(settings, stt) if stt else
                  build_recognizer(settings, stack.recognizer, stack.recognizer_model))
    voice = build_synthesizer(settings, stack.voice, stack.voice_model)
    matcher = IntentMatcher()
    cases = requests()[:limit] if limit else requests()
    general = GENERAL[:max(1, limit // 6)] if limit else GENERAL
    rows: list[dict[str, Any]] = []
    captured = 0
    with tempfile.TemporaryDirectory(prefix="hearth-skills-") as tmp:
        def ask(text: str, number: int) -> dict[str, Any]:
            speech = AudioChunk.concatenate(list(voice.synthesize(text)))
            padded = AudioChunk.concatenate([AudioChunk.silence(0.3, speech.sample_rate),
                                             speech,
                                             AudioChunk.silence(0.4, speech.sample_rate)])
            wav = write_wav(Path(tmp) / f"r{number}.wav", padded)
            skills = SkillSet(matcher, TimerStore(Path(tmp) / f"t{number}.sqlite3"),
                              clock=lambda: NOW)
            try:
                return run_file_turn(settings, engine=engine, recognizer=recognizer, wav=wav,
                                     model_id=choice.model_id, skills=skills)
            finally:
                skills.close()

        for number, (text, intent, expected) in enumerate(cases):
            result = ask(text, number)
            got = result["intent"] or {}
            slots = got.get("slots", {})
            ok = got.get("name") == intent and all(slots.get(k) == v
                                                   for k, v in expected.items())
            words = " ".join("".join(c for c in text.lower() if c.isalnum() or c in " '").split())
            heard = " ".join("".join(c for c in result["transcript"].lower()
                                     if c.isalnum() or c in " '").split())
            rows.append({"request": text, "transcript": result["transcript"],
                         "intent": got.get("name"), "slots": slots, "ok": ok,
                         "exact": words == heard,
                         "first_token_ms": result["first_token_ms"],
                         "reply": result["reply"]})
            print(f"{'ok ' if ok else 'NO '} {text!r} heard {result['transcript']!r} -> "
                  f"{got.get('name')} {slots} | {result['reply'][:60]!r}", flush=True)
        for number, question in enumerate(general, start=len(cases)):
            result = ask(question, number)
            captured += result["intent"] is not None
            print(f"general {question!r} heard {result['transcript']!r} -> "
                  f"{result['intent']}", flush=True)
    engine.close()
    successes = sum(r["ok"] for r in rows)
    skill_times = [r["first_token_ms"] for r in rows if r["intent"]]
    summary = {
        "requests": len(rows), "successes": successes,
        "task_success": successes / len(rows) if rows else 0.0,
        "exact_transcripts": sum(r["exact"] for r in rows),
        "general": len(general), "general_captured": captured,
        "skill_first_token_ms_median": statistics.median(skill_times) if skill_times else 0.0,
    }
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "stack": f"{voice.name} -> {recognizer.name} -> skills / {choice.model_id} on "
                     "llama.cpp",
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"skills-{stt}" if stt else "skills"
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "requests": rows}, indent=2, ensure_ascii=False))
    markdown = _markdown(summary, meta, rows)
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
    return 0 if summary["task_success"] >= TARGET_SUCCESS else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N requests (a quick look)")
    parser.add_argument("--stt", choices=["whisper", "pocketsphinx", "vosk"],
                        help="recognizer (default: the stack's choice)")
    args = parser.parse_args(argv)
    return run_skills_bench(args.limit, args.stt)


if __name__ == "__main__":
    raise SystemExit(main())
