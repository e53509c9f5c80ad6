"""`hearth transcribe` (speech in a WAV file to text) and `hearth say` (text to the
speaker or a WAV file): the speech stages on their own, for scripts and checks."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from app.config import Settings
from app.speech_setup import (
    build_recognizer,
    build_synthesizer,
    choose_recognizer,
    choose_synthesizer,
    open_speaker,
)
from speech.sentences import SentenceSplitter
from speech.wav import WavSink, WavSource


def run_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    """Print the transcript of `args.wav` (any rate: it is resampled to mono at the
    recognizer's rate, `[audio] sample_rate_hz`)."""
    backend, model = choose_recognizer(settings, args.stt, args.model)
    recognizer = build_recognizer(settings, backend, model)
    source = WavSource(args.wav, sample_rate=recognizer.sample_rate)
    started = time.perf_counter()
    source.start()
    while (chunk := source.read()) is not None:
        recognizer.accept(chunk)
    transcript = recognizer.finish()
    elapsed = time.perf_counter() - started
    recognizer.close()
    if args.json:
        print(json.dumps({
            "text": transcript.text,
            "words": [{"word": w.word, "start": round(w.start_seconds, 3),
                       "end": round(w.end_seconds, 3), "confidence": round(w.confidence, 3)}
                      for w in transcript.words],
            "backend": backend,
            "model": model,
            "audio_seconds": round(source.file_seconds, 3),
            "elapsed_seconds": round(elapsed, 3),
        }, ensure_ascii=False))
    else:
        print(transcript.text)
    return 0


def run_say(args: argparse.Namespace, settings: Settings) -> int:
    """Speak `args.text` sentence by sentence, or write it to `args.out`."""
    backend, voice = choose_synthesizer(settings, args.tts, args.voice)
    synthesizer = build_synthesizer(settings, backend, voice)
    sink = WavSink(args.out) if args.out else open_speaker(settings)
    splitter = SentenceSplitter()
    cancel = threading.Event()
    try:
        for sentence in splitter.feed(args.text) + splitter.flush():
            for chunk in synthesizer.synthesize(sentence, cancel):
                sink.play(chunk, cancel)
        sink.drain(cancel)
    except KeyboardInterrupt:
        cancel.set()
        sink.stop()
        raise
    finally:
        sink.close()
        synthesizer.close()
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
