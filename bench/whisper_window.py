"""Whisper's encoder window against clean open questions, decoded as a live turn does.

The open questions of bench/stt.py, each rendered several times by Piper's bundled voice
(joe, with its sampling noise on, as Hearth speaks: every rendering differs a little; the
renderings are cached as WAVs, so a rerun decodes the same audio), each after a few
lengths of quiet pre-roll, are fed to `WhisperRecognizer` (bias prompt and skill grammar,
as Hearth runs it) in 30 ms blocks: the speech, 0.6 s of quiet, then `finish()`. Before
each block the decode in progress is waited for (the schedule of a machine on which every
decode ends within a block: the same on every run). Partials are off unless `--partials`
(they cost most of the run and the final is the decode in the pause either way).

The rules take turns on each case (so they see the same load). Per rule: the wrong
finals, and the pause's cost (work the worker did from the end of the speech to the
final, wall and CPU ms). With `--paced`, the blocks come in real time with partials as
live, and `finish()` is called `PACED_QUIET_SECONDS` after the end of the speech, as the
endpointer's quick end does: the pause's cost is then the wait in `finish()`, which adds
to the live latency (its `final_transcript_ms`). Results go to bench/results/whisper_window.*.

    python -m bench.whisper_window [--renderings 4] [--rules before,after,30s] [--paced]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.stt import BLOCK, GENERAL_QUESTIONS, REQUESTS, RESULTS, normalize
from speech.audio import AudioChunk

CACHE = Path(os.environ.get("HEARTH_WINDOW_BENCH_CACHE", "/tmp/hearth-whisper-window"))
RATE = 16000
LEADS_SECONDS = (0.1, 0.2, 0.3)
"""Quiet before the speech (the endpointer's pre-roll varies with when it hears speech)."""
TRAIL_SECONDS = 0.6
PACED_QUIET_SECONDS = 0.3
"""Quiet after the speech before `finish()` with `--paced` (the quick end is 250 ms of
quiet by Silero's measure, which starts a little after the words end)."""
SCORE_THRESHOLDS = (-0.1, -0.15, -0.2, -0.25, -0.3, -0.35, -0.4, -0.5)
"""`recheck_below_score` values the rechecked turns are tallied for."""
RULES: dict[str, dict[str, Any]] = {
    "before": {"recheck_window_seconds": 0.0},
    "after": {},
    "recheck-all": {"recheck_below_score": 0.0},
    "8s": {"window_seconds": 8.0, "partial_window_seconds": 8.0, "recheck_window_seconds": 0.0},
    "12s": {"window_seconds": 12.0, "partial_window_seconds": 12.0,
            "recheck_window_seconds": 0.0},
    "20s": {"window_seconds": 20.0, "partial_window_seconds": 20.0,
            "recheck_window_seconds": 0.0},
    "30s": {"window_seconds": 30.0, "partial_window_seconds": 30.0,
            "recheck_window_seconds": 0.0},
    "audio+2s": {"window_seconds": 0.0, "partial_window_seconds": 0.0, "pad_seconds": 2.0,
                 "recheck_window_seconds": 0.0},
}
"""WhisperOptions per rule: 'before' is the 10 s window alone, 'after' the defaults (10 s
and the recheck of open questions scored below `recheck_below_score` with Whisper's 30 s
window), 'recheck-all' the recheck of every open question."""


def questions() -> list[str]:
    """The open questions as Piper is given them ("What is the capital of france?")."""
    spoken = []
    for q in (r for r in REQUESTS if r in GENERAL_QUESTIONS):
        ending = "?" if q.split()[0] in ("what", "how", "who", "why") else "."
        spoken.append(q[0].upper() + q[1:] + ending)
    return spoken


def renderings(texts: Sequence[str], count: int, cache: Path = CACHE) -> list[tuple[str, int,
                                                                                 AudioChunk]]:
    """(text, rendering number, 16 kHz audio) of `count` renderings of each text, made
    once and then read from `cache`."""
    from app.models.store import ModelStore
    from speech.piper_tts import PiperSynthesizer
    from speech.resample import resample
    from speech.wav import read_wav, write_wav

    cache.mkdir(parents=True, exist_ok=True)
    voice = None
    out = []
    for k in range(count):
        for text in texts:
            path = cache / f"{normalize(text).replace(' ', '_')}-{k}.wav"
            if not path.exists():
                voice = voice or PiperSynthesizer(ModelStore().path("piper-en_US-joe-medium"))
                chunks = list(voice.synthesize(text, threading.Event()))
                write_wav(path, resample(AudioChunk.concatenate(chunks), RATE))
            out.append((text, k, read_wav(path)))
    return out


def _speech_end(audio: AudioChunk) -> int:
    """Frames up to the end of the last loud block (the recognizer's own rule, roughly)."""
    blocks = [audio.samples[i:i + BLOCK].astype(np.float64)
              for i in range(0, audio.frames, BLOCK)]
    rms = np.array([np.sqrt(np.mean(b * b)) for b in blocks])
    loud = np.nonzero(rms >= max(120.0, 0.1 * rms.max()))[0]
    return int(loud[-1] + 1) * BLOCK


def live_turn(recognizer: Any, audio: AudioChunk, paced: bool) -> tuple[str, float, float]:
    """(final text, pause ms, pause CPU ms) of `audio` fed in blocks, each after the
    decode in progress has ended; the pause is the wait from the end of the speech to
    the final. `paced`: in real time instead, up to `PACED_QUIET_SECONDS` after the
    speech; the pause is the wait in `finish()`."""
    speech_end = _speech_end(audio)
    wall = cpu = 0.0
    if paced:
        begun = time.perf_counter()
        end = min(audio.frames, speech_end + int(PACED_QUIET_SECONDS * RATE))
        for n, i in enumerate(range(0, end, BLOCK)):
            time.sleep(max(0.0, begun + n * BLOCK / RATE - time.perf_counter()))
            recognizer.accept(AudioChunk(audio.samples[i:i + BLOCK].copy(), RATE))
        time.sleep(max(0.0, begun + end / RATE - time.perf_counter()))
    else:
        for i in range(0, audio.frames, BLOCK):
            started, cpu_started = time.perf_counter(), time.process_time()
            if recognizer._pending is not None:  # (a live machine would be decoding it now)
                recognizer._pending.result()
            if i >= speech_end:
                wall += time.perf_counter() - started
                cpu += time.process_time() - cpu_started
            recognizer.accept(AudioChunk(audio.samples[i:i + BLOCK].copy(), RATE))
    started, cpu_started = time.perf_counter(), time.process_time()
    text = str(recognizer.finish().text)
    wall += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    return text, wall * 1000, cpu * 1000


class _Rule:
    """One rule's recognizer and tallies."""

    def __init__(self, name: str, partials: bool) -> None:
        from dataclasses import replace

        from app.models.store import ModelStore
        from app.skills import bias_phrases
        from app.skills.recognizer_grammar import recognizer_grammar
        from speech.whisper_stt import WhisperOptions, WhisperRecognizer

        options = replace(WhisperOptions(), **RULES[name])
        if not partials:
            options = replace(options, partial_interval_seconds=3600.0)
        self.name = name
        self.recognizer = WhisperRecognizer(
            ModelStore().path("whisper-tiny.en"), bias_phrases=bias_phrases("en"),
            skill_sentences=recognizer_grammar("en"), options=options)
        self.wrong: list[dict[str, Any]] = []
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.windows: Counter[float] = Counter()
        decode = self.recognizer._decode

        def counted(samples: np.ndarray, generation: int, window: float, *rest: Any) -> Any:
            self.windows[window] += 1
            return decode(samples, generation, window, *rest)

        self.recognizer._decode = counted  # type: ignore[method-assign]
        self.rechecks: list[tuple[float, str, str]] = []
        """(score, transcript, rechecked transcript) of each recheck of the turn."""
        recheck = self.recognizer._recheck

        def scored(decoded: Any) -> str:
            text = recheck(decoded)
            self.rechecks.append((decoded.score, decoded.text, text))
            return text

        self.recognizer._recheck = scored  # type: ignore[method-assign]
        self.scored: list[dict[str, Any]] = []
        """Per turn rechecked: its score, whether the final is right, and whether the
        transcript before the recheck was."""

    def by_threshold(self) -> dict[str, dict[str, Any]]:
        """Wrong finals and the share of rechecked turns had only turns scored below each
        threshold been rechecked (from the turns rechecked here, with every score)."""
        out = {}
        for threshold in SCORE_THRESHOLDS:
            kept = [s for s in self.scored if s["score"] >= threshold]
            changed = sum(s["right_before"] - s["right"] for s in kept)
            out[str(threshold)] = {
                "wrong": len(self.wrong) - changed,
                "rechecked": round(1 - len(kept) / max(1, len(self.scored)), 3)}
        return out

    def row(self) -> dict[str, Any]:
        row = {"wrong": len(self.wrong), "turns": len(self.walls),
               "pause_ms_median": round(statistics.median(self.walls), 1),
               "pause_ms_p90": round(float(np.percentile(self.walls, 90)), 1),
               "pause_cpu_ms_median": round(statistics.median(self.cpus), 1),
               "decodes_by_window": {str(w): n for w, n in sorted(self.windows.items())},
               "load_average": [round(x, 2) for x in os.getloadavg()],
               "misheard": self.wrong}
        if self.scored:
            row["by_score_threshold"] = self.by_threshold()
            row["scored"] = self.scored
            print(f"  if rechecked below score: {row['by_score_threshold']}", flush=True)
        print(f"{self.name}: wrong {row['wrong']}/{row['turns']}, pause median "
              f"{row['pause_ms_median']} ms (p90 {row['pause_ms_p90']}, CPU "
              f"{row['pause_cpu_ms_median']}), decodes by window {row['decodes_by_window']}, "
              f"load {row['load_average'][0]}", flush=True)
        return row


def run_rules(names: Sequence[str], cases: Sequence[tuple[str, int, AudioChunk]],
              partials: bool, paced: bool = False) -> dict[str, dict[str, Any]]:
    """Every rule over every case and lead, the rules taking turns on each (so they see
    the same load): wrong finals and the pause's cost, by rule."""
    rules = [_Rule(name, partials) for name in names]
    try:
        for text, k, speech in cases:
            for lead in LEADS_SECONDS:
                audio = AudioChunk.concatenate([AudioChunk.silence(lead, RATE), speech,
                                                AudioChunk.silence(TRAIL_SECONDS, RATE)])
                for rule in rules:
                    rule.rechecks.clear()
                    heard, wall, cpu = live_turn(rule.recognizer, audio, paced)
                    if rule.rechecks:
                        score, before, after = rule.rechecks[-1]
                        rule.scored.append({
                            "said": text, "rendering": k, "lead": lead,
                            "score": round(score, 4), "heard": before, "rechecked": after,
                            "right_before": normalize(before) == normalize(text),
                            "right": normalize(heard) == normalize(text)})
                    rule.walls.append(wall)
                    rule.cpus.append(cpu)
                    if normalize(heard) != normalize(text):
                        rule.wrong.append({"said": text, "rendering": k, "lead": lead,
                                           "heard": heard})
    finally:
        for rule in rules:
            rule.recognizer.close()
    return {rule.name: rule.row() for rule in rules}


def markdown(rows: dict[str, Any]) -> str:
    lines = ["# Whisper's encoder window: clean open questions as a live turn decodes them",
             "", "`python -m bench.whisper_window` (bench/whisper_window.py): Piper joe "
             "renderings of bench/stt.py's open questions, pre-roll "
             f"{', '.join(str(s) for s in LEADS_SECONDS)} s; pause: end of speech -> final "
             "(the worker's time).", "",
             "| rule | wrong | pause median ms | p90 ms | CPU median ms | decodes by window "
             "| load |", "|---|---|---|---|---|---|---|"]
    for label, row in rows.items():
        counts = ", ".join(f"{w} s: {n}" for w, n in row.get("decodes_by_window", {}).items())
        lines.append(f"| {label} | {row['wrong']}/{row['turns']} | {row['pause_ms_median']} | "
                     f"{row['pause_ms_p90']} | {row['pause_cpu_ms_median']} | {counts or '-'} | "
                     f"{row['load_average'][0]} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renderings", type=int, default=4, help="renderings per question")
    parser.add_argument("--first", type=int, default=0,
                        help="skip the renderings numbered below this (fresh audio)")
    parser.add_argument("--rules", default="before,after", help=f"of {', '.join(RULES)}")
    parser.add_argument("--partials", action="store_true", help="partials as live (slower)")
    parser.add_argument("--paced", action="store_true",
                        help="in real time with partials; the pause is the wait in finish()")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    if unknown := [r for r in rules if r not in RULES]:
        parser.error(f"unknown rules {unknown}; choose from {', '.join(RULES)}")
    cases = [c for c in renderings(questions(), args.renderings) if c[1] >= args.first]
    store = args.out / "whisper_window.json"
    rows = json.loads(store.read_text()) if store.exists() else {}
    numbers = f"{args.first}-{args.renderings - 1}"
    mode = " paced" if args.paced else " +partials" if args.partials else ""
    for name, row in run_rules(rules, cases, args.partials or args.paced, args.paced).items():
        row["renderings"] = numbers
        rows[f"{name}{mode}, renderings {numbers}"] = row
    args.out.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    (args.out / "whisper_window.md").write_text(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
