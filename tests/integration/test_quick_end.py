"""The endpointer's quick end counts quiet, not only Silero's silence (real Silero VAD on
Piper's voice): Silero keeps calling the fading "s" of "France" speech for about 0.3 s,
and a complete request ends `quick_end_silence_ms` after its audio went quiet."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from speech.audio import AudioChunk
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.vad import Endpointer, VadEvent, VadEventKind

RATE = 16000
BLOCK = 480


def _first_end(audio: AudioChunk, complete: bool) -> VadEvent:
    endpointer = Endpointer(RATE, end_silence_ms=400, quick_end_silence_ms=250,
                            engine="silero")
    for i in range(0, audio.frames, BLOCK):
        endpointer.complete = complete and endpointer.in_speech
        for event in endpointer.process(AudioChunk(audio.samples[i:i + BLOCK], RATE)):
            if event.kind == VadEventKind.SPEECH_END:
                return event
    raise AssertionError("no end of speech")


def test_a_complete_request_ends_after_its_quiet_not_silero_s_silence(
        piper_voice_onnx: Path) -> None:
    voice = PiperSynthesizer(piper_voice_onnx, deterministic=True)
    speech = resample(AudioChunk.concatenate(list(voice.synthesize(
        "What is the capital of France?", threading.Event()))), RATE)
    audio = AudioChunk.concatenate([speech, AudioChunk.silence(1.0, RATE)])
    steps = speech.samples[:speech.frames // 160 * 160].astype(np.float64).reshape(-1, 160)
    loudness = np.sqrt((steps ** 2).mean(axis=1))
    true_end = (np.flatnonzero(loudness > 0.1 * loudness.max())[-1] + 1) / 100
    quick, full = _first_end(audio, complete=True), _first_end(audio, complete=False)
    assert quick.speech_seconds > true_end - 0.15  # nothing of the request cut
    assert quick.stream_seconds < true_end + 0.25 + 0.1, (quick, true_end)
    # the full end waits for Silero's silence: later than the quiet by more than 150 ms
    assert full.stream_seconds - 0.4 > quick.stream_seconds - 0.25 + 0.15, (full, quick)
