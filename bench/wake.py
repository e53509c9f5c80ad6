"""Wake word: detection rate through a private PulseAudio, and false wakes per hour.

Run: `hearth bench wake [--hours 6] [--no-live]` or `python -m bench.wake`.

(a) Detection. "Okay Nabu" synthesized by several voices and speeds (Piper's bundled
    en_US-joe at three speaking rates, espeak-ng's en-us, en-gb, en-gb-scotland,
    en-us+m3 and en-us+f3 at two speeds each), each at three loudness levels, clean
    and with pink noise at 10 dB SNR, is joined into one recording with 2 s between
    phrases, played into the "hearth_mic" null sink of a private PulseAudio daemon with
    paplay and captured by Hearth's own `Microphone` (PortAudio -> ALSA pulse plugin ->
    resampled to 16 kHz), live, while the default detector listens. A phrase counts as
    detected when a detection falls between its start and 1.2 s after its end; other
    detections are false. Target: >= 95 %.

(b) False wakes. At least `--hours` of speech without the wake word: espeak-ng reading
    every text in /usr/share/common-licenses (public licence texts shipped by Debian's
    base-files) in several voices and speeds, plus the real LibriVox recordings of
    Debian's pocketsphinx-testdata; then `--noisy-hours` of it again in continuous pink
    noise at 10 dB SNR (where the detector lowers its cutoff). The detector runs on the
    files directly (50-300 times faster than real time). Target: <= 0.5 per hour.

Writes bench/results/wake.json and bench/results/wake.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RATE = 16000
PHRASES = ("Okay Nabu.", "Okay, Nabu!")
PIPER_RATES = (0.8, 1.0, 1.3)
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-us+m3", "en-us+f3")
ESPEAK_SPEEDS = (140, 185)
GAINS = (1.0, 0.5, 0.25)
"""Loudness levels of each phrase: as synthesized, -6 dB and -12 dB."""
NOISE_SNR_DB = 10.0
GAP_SECONDS = 2.0
HIT_WINDOW_AFTER_SECONDS = 1.2
TARGET_DETECTION = 0.95
TARGET_FALSE_PER_HOUR = 0.5
LICENSES = Path("/usr/share/common-licenses")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CORPUS_VOICES = (("en-us", 175), ("en-gb", 150), ("en-us+m3", 200), ("en-gb-scotland", 165),
                 ("en-us+f3", 185))
"""espeak-ng voice and words per minute of each reading of the text corpus."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from speech.audio import AudioChunk  # noqa: E402
from speech.resample import resample  # noqa: E402
from speech.wake import WakeDetection, WakeWordDetector  # noqa: E402
from speech.wav import read_wav, write_wav  # noqa: E402


def espeak(text: str, voice: str, speed: int, folder: Path) -> AudioChunk:
    """`text` spoken by espeak-ng, at 16 kHz."""
    path = folder / "espeak.wav"
    source = folder / "espeak.txt"
    source.write_text(text)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-f", str(source), "-w",
                    str(path)], check=True, capture_output=True)
    return resample(read_wav(path), RATE)


def _trim(chunk: AudioChunk) -> AudioChunk:
    """Without the synthesizer's leading and trailing silence (SNR is over the speech)."""
    loud = np.flatnonzero(np.abs(chunk.samples.astype(np.int32)) > 300)
    if loud.size == 0:
        return chunk
    return AudioChunk(chunk.samples[loud[0]:loud[-1] + 1].copy(), chunk.sample_rate)


def wake_renderings(folder: Path) -> list[tuple[str, AudioChunk]]:
    """(label, audio) of each synthesized wake phrase, trimmed, at 16 kHz."""
    from app.config import Settings
    from app.speech_setup import resolve_model
    from speech.piper_tts import PiperSynthesizer

    renderings = []
    voice = resolve_model(Settings(), "piper-en_US-joe-medium")
    for rate in PIPER_RATES:
        piper = PiperSynthesizer(voice, speaking_rate=rate)
        for phrase in PHRASES:
            audio = AudioChunk.concatenate(list(piper.synthesize(phrase, threading.Event())))
            renderings.append((f"piper joe x{rate} {phrase!r}", _trim(resample(audio, RATE))))
        piper.close()
    for name in ESPEAK_VOICES:
        for speed in ESPEAK_SPEEDS:
            phrase = PHRASES[speed % 2]
            renderings.append((f"espeak {name} {speed} wpm {phrase!r}",
                               _trim(espeak(phrase, name, speed, folder))))
    return renderings


def pink_noise(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS 1/f noise (float)."""
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, frames)
    return noise / np.sqrt(np.mean(noise ** 2))


def with_noise(speech: AudioChunk, snr_db: float, rng: np.random.Generator,
               before_seconds: float = 0.5, after_seconds: float = 0.5) -> AudioChunk:
    """`speech` padded before and after, in pink noise `snr_db` below its RMS."""
    clean = np.concatenate([np.zeros(round(before_seconds * RATE)),
                            speech.samples.astype(np.float64),
                            np.zeros(round(after_seconds * RATE))])
    speech_rms = float(np.sqrt(np.mean(speech.samples.astype(np.float64) ** 2)))
    noisy = clean + pink_noise(len(clean), rng) * speech_rms / 10 ** (snr_db / 20)
    return AudioChunk(np.clip(np.round(noisy), -32768, 32767).astype(np.int16), RATE)


def detection_trials(renderings: list[tuple[str, AudioChunk]],
                     seed: int = 0) -> tuple[AudioChunk, list[dict[str, Any]]]:
    """One recording holding every trial (clean and noisy, at each gain) and the trials'
    labels and positions (seconds). Each trial follows 2 s of silence, or of the same
    noise for the noisy ones."""
    rng = np.random.default_rng(seed)
    parts: list[AudioChunk] = []
    trials = []
    position = 0.0
    for label, phrase in renderings:
        for noisy in (False, True):
            for gain in GAINS:
                scaled = AudioChunk(np.round(phrase.samples * gain).astype(np.int16), RATE)
                # noise is continuous: it fills the gap before the phrase too
                lead = GAP_SECONDS + 0.5 if noisy else 0.5
                audio = with_noise(scaled, NOISE_SNR_DB, rng, lead) if noisy else \
                    AudioChunk.concatenate([AudioChunk.silence(lead, RATE), scaled,
                                            AudioChunk.silence(0.5, RATE)])
                if not noisy:
                    parts.append(AudioChunk.silence(GAP_SECONDS, RATE))
                    position += GAP_SECONDS
                trials.append({"label": label, "noise": noisy, "gain": gain,
                               "start": position + lead, "end": position + audio.seconds - 0.5})
                parts.append(audio)
                position += audio.seconds
    return AudioChunk.concatenate(parts), trials


def score(trials: list[dict[str, Any]], detections: list[float]) -> dict[str, Any]:
    """Match detection times (seconds) to trials; the rates overall and per condition."""
    unmatched = list(detections)
    for trial in trials:
        hit = next((t for t in unmatched
                    if trial["start"] <= t <= trial["end"] + HIT_WINDOW_AFTER_SECONDS), None)
        trial["detected"] = hit is not None
        if hit is not None:
            unmatched.remove(hit)

    def rate(selected: list[dict[str, Any]]) -> float:
        return round(sum(t["detected"] for t in selected) / max(1, len(selected)), 4)

    return {"trials": len(trials), "detected": sum(t["detected"] for t in trials),
            "rate": rate(trials), "clean_rate": rate([t for t in trials if not t["noise"]]),
            "noisy_rate": rate([t for t in trials if t["noise"]]),
            "false_detections": len(unmatched),
            "missed": [f"{t['label']} {'noisy' if t['noise'] else 'clean'} x{t['gain']}"
                       for t in trials if not t["detected"]]}


def detect_through_pulse(recording: AudioChunk, first_sound_seconds: float,
                         make_detector: Callable[[], WakeWordDetector],
                         folder: Path) -> list[float]:
    """Play `recording` into a private PulseAudio's microphone sink, capture it with
    Hearth's Microphone and run the detector live; the detection times in seconds on the
    recording's clock (aligned by where the first sound, at `first_sound_seconds` in
    the recording, was captured: capture starts before playback)."""
    from speech.devices import Microphone
    from tests.integration.pulse import PulseServer

    server = PulseServer(folder)
    server.start()
    detections: list[float] = []
    first_sound: float | None = None
    try:
        server.activate()
        wav = write_wav(folder / "trials.wav", recording)
        detector = make_detector()
        microphone = Microphone(server.device, sample_rate=RATE, block_ms=30)
        microphone.start()
        time.sleep(0.3)
        microphone.flush()
        heard = 0.0
        player = server.play_wav_to_mic(wav, wait=False)
        started = time.monotonic()
        while player.poll() is None or time.monotonic() - started < recording.seconds + 1.5:
            chunk = microphone.read(timeout=0.2)
            if chunk is None:
                continue
            if first_sound is None and np.abs(chunk.samples.astype(np.int32)).max() > 300:
                first_sound = heard
            heard += chunk.seconds
            if detector.detect(chunk) is not None:
                detections.append(heard)
        microphone.close()
        detector.close()
    finally:
        server.stop()
    offset = (first_sound if first_sound is not None else 0.0) - first_sound_seconds
    return [round(t - offset, 3) for t in detections]


def speech_corpus(hours: float, folder: Path) -> Iterator[tuple[str, AudioChunk]]:
    """(label, audio) pieces of speech without the wake word, `hours` long in total at
    least: LibriVox recordings, then licence texts read by espeak-ng voices in turn."""
    total = 0.0
    for wav in sorted(LIBRIVOX.glob("*.wav")):
        audio = resample(read_wav(wav), RATE)
        total += audio.seconds
        yield f"librivox {wav.stem}", audio
    texts = sorted(p for p in LICENSES.iterdir() if p.is_file())
    for voice, speed in CORPUS_VOICES:
        for text in texts:
            if total >= hours * 3600:
                return
            words = text.read_text(errors="replace").split()
            for i in range(0, len(words), 3000):  # ~17 minutes of speech per piece
                audio = espeak(" ".join(words[i:i + 3000]), voice, speed, folder)
                total += audio.seconds
                yield f"espeak {voice} {speed} wpm {text.name}", audio
    if total < hours * 3600:
        raise RuntimeError(f"the corpus holds only {total / 3600:.1f} h of speech")


def in_noise(pieces: Iterator[tuple[str, AudioChunk]], snr_db: float,
             seed: int = 1) -> Iterator[tuple[str, AudioChunk]]:
    """Each piece in continuous pink noise `snr_db` below its RMS."""
    rng = np.random.default_rng(seed)
    for label, audio in pieces:
        yield f"{label} in noise", with_noise(audio, snr_db, rng, 0.0, 0.0)


def count_false_wakes(detector: WakeWordDetector, pieces: Iterator[tuple[str, AudioChunk]],
                      block_seconds: float = 1.0) -> dict[str, Any]:
    """Run `detector` over every piece (with 1 s of silence between); count detections."""
    seconds = 0.0
    wakes: list[dict[str, Any]] = []
    sources: set[str] = set()
    started = time.perf_counter()
    block = round(block_seconds * RATE)
    for label, audio in pieces:
        sources.add(label.split(" ")[0])
        audio = AudioChunk.concatenate([audio, AudioChunk.silence(1.0, RATE)])
        for i in range(0, audio.frames, block):
            found: WakeDetection | None = detector.detect(
                AudioChunk(audio.samples[i:i + block], RATE))
            if found is not None:
                wakes.append({"source": label, "at_seconds": round(i / RATE, 1),
                              "probability": found.probability})
        seconds += audio.seconds
    elapsed = time.perf_counter() - started
    hours = seconds / 3600
    return {"hours": round(hours, 2), "false_wakes": len(wakes),
            "per_hour": round(len(wakes) / hours, 3) if hours else 0.0, "wakes": wakes,
            "sources": sorted(sources), "elapsed_seconds": round(elapsed, 1),
            "times_real_time": round(seconds / elapsed, 1) if elapsed else 0.0}


def _markdown(result: dict[str, Any]) -> str:
    lines = ["# Wake word (okay nabu, microWakeWord)", "",
             f"{result['meta']['machine']}, {result['meta']['when']}", "",
             "| measure | value | target |", "| --- | --- | --- |"]
    det = result.get("detection")
    if det:
        lines += [f"| detection through PulseAudio, all ({det['trials']} phrases) | "
                  f"{det['rate']:.1%} | >= {TARGET_DETECTION:.0%} |",
                  f"| detection, clean | {det['clean_rate']:.1%} | |",
                  f"| detection, pink noise at {NOISE_SNR_DB:.0f} dB SNR | "
                  f"{det['noisy_rate']:.1%} | |",
                  f"| false detections between the phrases | {det['false_detections']} | 0 |"]
    for key, what in (("false_wakes", "speech without the wake word"),
                      ("false_wakes_noisy", f"the same in pink noise at {NOISE_SNR_DB:.0f} dB "
                                            "SNR")):
        if key in result:
            fw = result[key]
            lines.append(f"| false wakes over {fw['hours']} h of {what} | {fw['false_wakes']} "
                         f"({fw['per_hour']} per hour) | <= {TARGET_FALSE_PER_HOUR} per hour |")
    lines += [f"| detector speed on files | {result['false_wakes']['times_real_time']}x real "
              "time | |", ""]
    if det and det["missed"]:
        lines += ["Missed: " + "; ".join(det["missed"]), ""]
    return "\n".join(lines)


def run_wake_bench(hours: float = 6.0, live: bool = True, noisy_hours: float = 2.0) -> int:
    """Run both measurements, print and save them; exit code 0 when the targets are met."""
    from app.config import Settings, replace
    from app.speech_setup import build_wake_detector

    settings = replace(Settings(), "wake", enabled=True)

    def make_detector() -> WakeWordDetector:
        detector = build_wake_detector(settings)
        assert detector is not None
        return detector

    result: dict[str, Any] = {"meta": {"machine": f"{platform.machine()}, "
                                                  f"{platform.python_version()}",
                                       "when": time.strftime("%Y-%m-%d %H:%M"),
                                       "wake_word": settings.wake.phrase,
                                       "backend": make_detector().name}}
    ok = True
    with tempfile.TemporaryDirectory(prefix="hearth-wake-") as tmp:
        folder = Path(tmp)
        if live:
            renderings = wake_renderings(folder)
            recording, trials = detection_trials(renderings)
            print(f"detection: {len(trials)} phrases, {recording.seconds:.0f} s through "
                  "PulseAudio ...", flush=True)
            detections = detect_through_pulse(recording, trials[0]["start"], make_detector,
                                              folder)
            result["detection"] = score(trials, detections)
            ok &= result["detection"]["rate"] >= TARGET_DETECTION
            print(f"  detected {result['detection']['rate']:.1%} (clean "
                  f"{result['detection']['clean_rate']:.1%}, noisy "
                  f"{result['detection']['noisy_rate']:.1%}), "
                  f"{result['detection']['false_detections']} false", flush=True)
        passes = [("false_wakes", speech_corpus(hours, folder))]
        if noisy_hours > 0:
            passes.append(("false_wakes_noisy",
                           in_noise(speech_corpus(noisy_hours, folder), NOISE_SNR_DB)))
        for key, pieces in passes:
            print(f"{key}: speech without the wake word ...", flush=True)
            result[key] = count_false_wakes(make_detector(), pieces)
            ok &= result[key]["per_hour"] <= TARGET_FALSE_PER_HOUR
            print(f"  {result[key]['false_wakes']} in {result[key]['hours']} h "
                  f"= {result[key]['per_hour']} per hour", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wake.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "wake.md").write_text(_markdown(result))
    print(_markdown(result))
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0,
                        help="hours of speech without the wake word (default 6)")
    parser.add_argument("--noisy-hours", type=float, default=2.0,
                        help="hours of that speech again in pink noise at 10 dB SNR")
    parser.add_argument("--no-live", action="store_true",
                        help="skip the detection rate through PulseAudio")
    args = parser.parse_args(argv)
    return run_wake_bench(args.hours, live=not args.no_live, noisy_hours=args.noisy_hours)


if __name__ == "__main__":
    sys.exit(main())
