"""Soak test: many turns through one long-lived real pipeline, watching for leaks.

Drives `--text-turns` typed turns and `--voice-turns` spoken turns (file mode: espeak-ng
questions fed to the recognizer, Piper speaking the reply into a sink that only counts
samples) through one `Assistant` with the bundled SmolLM2 on llama.cpp, PocketSphinx,
Piper and a real history database (llama.cpp on `--threads` threads, 1 by default).
It samples this process's RSS, open file descriptors, OS threads and glibc's malloc
figures (memory handed out vs held free: a leak grows the first, fragmentation the
second); `--trace-python` adds a tracemalloc comparison of what Python objects grew.
At the end it counts the history rows.

Growth is measured from the RSS after the `--warm-up` turns (the first turns fill model
caches and allocator arenas; the baseline is printed when taken) to the RSS after the
last turn. Pass criteria (printed, and in the JSON): that growth < 10 %, no growth of
open fds or threads, one history row per turn, no turn ending in an error.

Run: `python -m bench.soak` (defaults: 1000 text + 100 voice turns, 24-token replies)
or `python -m bench.soak --text-turns 50 --voice-turns 5` for a quick look. Writes
bench/results/soak.json and bench/results/soak.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.engine_setup import build_engine
from app.events import ErrorEvent, Event, FinalTranscript, TurnMetrics
from app.history import History
from app.netguard import install_network_guard, offline_environment
from app.speech_setup import build_recognizer, build_synthesizer
from speech.audio import AudioChunk
from speech.io import AudioSink
from speech.wav import read_wav

RESULTS = Path(__file__).resolve().parent / "results"
MODEL_ID = "smollm2-135m-instruct-q4_1"
QUESTIONS = [
    "What is the capital of France?",
    "Tell me a joke about cats.",
    "How do I boil an egg?",
    "What is two plus two?",
    "Name a color of the sky.",
    "Why do birds sing in the morning?",
    "Give me a word that rhymes with tree.",
    "What day comes after Monday?",
]
SPOKEN = ["what is the capital of france", "tell me a story about a dog",
          "set a timer for ten minutes", "what is the weather like today"]


class CountingSink(AudioSink):
    """A speaker that keeps nothing: it only counts the seconds it was given (a sink that
    stored the audio would itself look like a leak)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def play(self, chunk: AudioChunk, cancel: threading.Event | None = None) -> None:
        with self._lock:
            self.seconds += chunk.seconds

    def stop(self) -> None:
        """Nothing plays in real time."""


class _MallInfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (sizes in bytes, summed over every malloc arena)."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None
    return libc


_LIBC = _glibc()


def malloc_mb() -> tuple[float | None, float | None]:
    """(bytes malloc has handed out and not got back, bytes it holds free) in MiB: RSS
    growth with a growing first figure is memory in use, with the second fragmentation."""
    if _LIBC is None:
        return None, None
    info = _LIBC.mallinfo2()
    return (round((info.uordblks + info.hblkhd) / 2**20, 1),
            round(info.fordblks / 2**20, 1))


@dataclass
class Sample:
    turns: int
    rss_mb: float
    open_fds: int
    os_threads: int
    python_threads: int
    malloc_in_use_mb: float | None
    malloc_free_mb: float | None


def sample(turns: int) -> Sample:
    proc = psutil.Process()
    return Sample(turns, round(proc.memory_info().rss / 2**20, 1), proc.num_fds(),
                  proc.num_threads(), threading.active_count(), *malloc_mb())


class TurnDriver:
    """Submits one turn at a time and waits for its TurnMetrics (or ErrorEvent)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.done = threading.Event()
        self.errors: list[str] = []
        self.empty_transcripts = 0
        self.last_metrics: TurnMetrics | None = None
        assistant.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            self.errors.append(event.text)
            self.done.set()
        elif isinstance(event, TurnMetrics):
            self.last_metrics = event
            self.done.set()
        elif isinstance(event, FinalTranscript) and not event.text:
            self.empty_transcripts += 1
            self.done.set()

    def text(self, question: str, timeout: float = 120.0) -> None:
        self.done.clear()
        self.assistant.submit_text(question)
        if not self.done.wait(timeout):
            self.errors.append(f"text turn timed out: {question!r}")

    def voice(self, audio: AudioChunk, timeout: float = 180.0) -> None:
        self.done.clear()
        self.assistant.submit_audio(audio)
        if not self.done.wait(timeout):
            self.errors.append("voice turn timed out")


def spoken_questions(directory: Path) -> list[AudioChunk]:
    chunks = []
    for i, text in enumerate(SPOKEN):
        path = directory / f"q{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, timeout=60)
        chunks.append(read_wav(path))
    return chunks


def run(text_turns: int, voice_turns: int, max_tokens: int, warm_up: int,
        every: int, history_turns: int, max_minutes: float = 0.0,
        threads: int = 1, trace_python: bool = False) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hearth-soak-"))
    settings = replace(Settings(), "engine", max_tokens=max_tokens, temperature=0.7, seed=7,
                       threads=threads)
    settings = replace(settings, "history", path=str(workdir / "history.sqlite3"))
    settings = replace(settings, "assistant", max_history_turns=history_turns)
    settings = replace(settings, "stt", backend="pocketsphinx")
    settings = replace(settings, "tts", backend="piper")
    engine, _ = build_engine(settings, "llama-cpp", MODEL_ID)
    recognizer = build_recognizer(settings)
    synthesizer = build_synthesizer(settings)
    history = History(settings.history_path)
    sink = CountingSink()
    assistant = Assistant(settings, engine=engine, recognizer=recognizer,
                          synthesizer=synthesizer, speaker=sink, history=history)
    driver = TurnDriver(assistant)
    audio = spoken_questions(workdir)
    assistant.start()
    samples = [sample(0)]
    started = time.monotonic()
    turns = 0
    plan = ["text"] * text_turns + ["voice"] * voice_turns
    # Interleave the voice turns evenly among the text turns.
    if voice_turns:
        step = max(1, len(plan) // voice_turns)
        plan = ["text"] * text_turns
        for i in range(voice_turns):
            plan.insert(min(len(plan), i * step + step // 2), "voice")
    generated = 0
    after_warm_up: Sample | None = None
    traced_from: tracemalloc.Snapshot | None = None
    stopped_early = False
    for kind in plan:
        if max_minutes and time.monotonic() - started > 60 * max_minutes:
            stopped_early = True  # a busy machine: report the turns that fitted
            break
        if kind == "text":
            driver.text(QUESTIONS[turns % len(QUESTIONS)])
        else:
            driver.voice(audio[turns % len(audio)])
        turns += 1
        if driver.last_metrics is not None:
            generated += driver.last_metrics.generated_tokens
            driver.last_metrics = None
        if turns == warm_up:
            after_warm_up = sample(turns)
            samples.append(after_warm_up)
            print(f"baseline after {turns} warm-up turns: {after_warm_up}", flush=True)
            if trace_python:
                tracemalloc.start()
                traced_from = tracemalloc.take_snapshot()
        elif turns % every == 0:
            samples.append(sample(turns))
            print(f"{turns} turns, {time.monotonic() - started:.0f} s: {samples[-1]}",
                  flush=True)
    end = sample(turns)
    samples.append(end)
    python_growth = _python_growth(traced_from) if traced_from is not None else None
    elapsed = time.monotonic() - started
    assistant.shutdown()
    rows = history.count()
    history.close()
    baseline = after_warm_up or samples[0]
    growth = (end.rss_mb - baseline.rss_mb) / baseline.rss_mb
    return {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "model": MODEL_ID,
        "engine": "llama-cpp",
        "max_tokens": max_tokens,
        "max_history_turns": history_turns,
        "engine_threads": threads,
        "text_turns": text_turns,
        "voice_turns": voice_turns,
        "turns": turns,
        "planned_turns": len(plan),
        "stopped_early_after_minutes": max_minutes if stopped_early else None,
        "voice_turns_run": plan[:turns].count("voice"),
        "seconds": round(elapsed, 1),
        "generated_tokens": generated,
        "reply_audio_seconds": round(sink.seconds, 1),
        "errors": driver.errors[:20],
        "error_count": len(driver.errors),
        "empty_transcripts": driver.empty_transcripts,
        "history_rows": rows,
        "start": asdict(samples[0]),
        "after_warm_up": asdict(baseline),
        "end": asdict(end),
        "rss_growth_after_warm_up": round(growth, 4),
        "measured": f"from RSS after the first {baseline.turns} turns (warm-up: model "
                    f"caches and allocator arenas fill) to RSS after the last turn",
        "samples": [asdict(s) for s in samples],
        "python_growth": python_growth,
        "pass": {
            "rss_growth_under_10_percent": growth < 0.10,
            "no_fd_growth": end.open_fds <= baseline.open_fds,
            "no_thread_growth": end.os_threads <= baseline.os_threads
            and end.python_threads <= baseline.python_threads,
            "one_history_row_per_turn": rows == turns,
            "no_errors": not driver.errors,
        },
    }


def _python_growth(before: tracemalloc.Snapshot, top: int = 10) -> dict[str, Any]:
    """What Python objects allocated since `before` and still hold: the total, and the
    source lines holding the most."""
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "lineno")
    return {
        "total_kib": round(sum(stat.size_diff for stat in stats) / 1024, 1),
        "top": [{"where": str(stat.traceback), "kib": round(stat.size_diff / 1024, 1),
                 "blocks": stat.count_diff} for stat in stats[:top]],
    }


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    s, w, e = result["start"], result["after_warm_up"], result["end"]
    lines = [
        "# Soak run",
        "",
        f"{result['turns']} of {result['planned_turns']} planned turns "
        f"({result['voice_turns_run']} of them voice turns in file mode"
        + (f"; stopped after {result['stopped_early_after_minutes']} minutes on a busy machine"
           if result["stopped_early_after_minutes"] else "")
        + f") through one Assistant: {result['model']} on {result['engine']}, "
        f"replies of at most {result['max_tokens']} tokens, {result['max_history_turns']} "
        f"earlier turns sent along; {result['seconds']} s on "
        f"{result['cpu_count']} CPUs ({result['machine']}).",
        "",
        "| when | turns | RSS (MB) | open fds | OS threads | Python threads |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in (("start", s), ("after warm-up", w), ("end", e)):
        lines.append(f"| {label} | {row['turns']} | {row['rss_mb']} | {row['open_fds']} | "
                     f"{row['os_threads']} | {row['python_threads']} |")
    lines += [
        "",
        f"RSS growth after warm-up: {100 * result['rss_growth_after_warm_up']:.2f} % "
        f"(limit 10 %; {result['measured']}). "
        f"History rows: {result['history_rows']} for {result['turns']} turns. "
        f"Errors: {result['error_count']}. Generated tokens: {result['generated_tokens']}; "
        f"spoken reply audio: {result['reply_audio_seconds']} s.",
        "",
        "| check | pass |",
        "|---|---|",
        *[f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in result["pass"].items()],
        "",
        "Every sample:",
        "",
        "| turns | RSS (MB) | open fds | OS threads | Python threads |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {x['turns']} | {x['rss_mb']} | {x['open_fds']} | {x['os_threads']} | "
          f"{x['python_threads']} |" for x in result["samples"]],
        "",
    ]
    (RESULTS / "soak.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-turns", type=int, default=1000)
    parser.add_argument("--voice-turns", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--warm-up", type=int, default=20, help="turns before the baseline")
    parser.add_argument("--every", type=int, default=100, help="sample every N turns")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="stop (and report) after this long; 0 runs every turn")
    parser.add_argument("--history-turns", type=int, default=4,
                        help="earlier turns sent with each question (keeps prompts short)")
    parser.add_argument("--trace-python", action="store_true",
                        help="tracemalloc from the warm-up on: which lines' objects grow")
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp compute threads (1: kind to a shared machine)")
    args = parser.parse_args()
    offline_environment()  # the soak runs under the same offline guard as hearth itself
    install_network_guard([])
    result = run(args.text_turns, args.voice_turns, args.max_tokens, args.warm_up, args.every,
                 args.history_turns, args.max_minutes, args.threads, args.trace_python)
    write_results(result)
    print(json.dumps({k: result[k] for k in ("turns", "planned_turns", "voice_turns_run",
                                             "seconds", "history_rows", "error_count",
                                             "start", "after_warm_up", "end",
                                             "rss_growth_after_warm_up", "measured", "pass")},
                     indent=2))
    if result["python_growth"] is not None:
        print(json.dumps(result["python_growth"], indent=2))
    print(f"wrote {RESULTS / 'soak.json'} and {RESULTS / 'soak.md'}")


if __name__ == "__main__":
    main()
