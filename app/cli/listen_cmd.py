"""`hearth listen IN.wav [--wake] [--json]`: the hands-free ear over a recording.

Runs the endpointer (and with `--wake` the wake-word detector) from the settings over
a WAV file, as fast as they go, and prints where speech starts and ends and each
wake-word detection with its probability, so thresholds can be tuned on one's own
recordings (e.g. `--cutoff 0.7`, or `[vad] end_silence_ms` in the config).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.config import Settings, replace
from app.speech_setup import build_endpointer, build_wake_detector
from speech.audio import AudioChunk
from speech.resample import resample
from speech.vad import VadEventKind
from speech.wake import WakeDetection
from speech.wav import read_wav

BLOCK_SECONDS = 0.03
"""Audio is fed in blocks of this length, as a microphone delivers it."""


def listen(settings: Settings, audio: AudioChunk, wake: bool) -> dict[str, Any]:
    """{"detections": [...], "speech": [...]} for `audio` (any rate; resampled)."""
    rate = settings.audio.sample_rate_hz
    audio = resample(audio, rate)
    endpointer = build_endpointer(settings, rate)
    detector = build_wake_detector(replace(settings, "wake", enabled=True)) if wake else None
    detections: list[WakeDetection] = []
    speech: list[dict[str, Any]] = []
    start: float | None = None
    block = max(1, round(BLOCK_SECONDS * rate))
    tail = AudioChunk.silence(settings.vad.end_silence_ms / 1000 + 0.2, rate)
    chunks = [AudioChunk(audio.samples[i:i + block], rate)
              for i in range(0, audio.frames, block)] + [tail]  # so speech at the end ends
    try:
        for chunk in chunks:
            if detector is not None and (found := detector.detect(chunk)) is not None:
                detections.append(found)
            for event in endpointer.process(chunk):
                if event.kind == VadEventKind.SPEECH_START:
                    start = event.speech_seconds
                else:
                    speech.append({"start": start, "end": min(event.speech_seconds,
                                                              round(audio.seconds, 3)),
                                   "truncated": event.truncated})
    finally:
        if detector is not None:
            detector.close()
    result: dict[str, Any] = {
        "detections": [{"wake_word": d.wake_word, "start": d.start_seconds,
                        "end": d.end_seconds, "probability": d.probability}
                       for d in detections],
        "speech": speech,
        "audio_seconds": round(audio.seconds, 3),
        "vad": endpointer.engine,
    }
    if detector is not None:
        result["wake_backend"] = detector.name
    return result


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.cutoff is not None:
        settings = replace(settings, "wake", probability_cutoff=args.cutoff)
    if args.wake_word:
        settings = replace(settings, "wake", phrase=args.wake_word)
    result = listen(settings, read_wav(args.wav), args.wake)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for d in result["detections"]:
        probability = "" if d["probability"] is None else f"  probability {d['probability']:.2f}"
        print(f"wake   {d['start']:7.2f} - {d['end']:7.2f} s  {d['wake_word']!r}{probability}")
    for s in result["speech"]:
        print(f"speech {s['start']:7.2f} - {s['end']:7.2f} s"
              + ("  (cut at vad.max_utterance_seconds)" if s["truncated"] else ""))
    if args.wake and not result["detections"]:
        print("no wake word heard")
    return 0
