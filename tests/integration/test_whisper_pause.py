"""Whisper's decode in a pause (issue 16), with the real bundled model: partials use the
short window and none starts once the audio has gone quiet, so the decode in the pause
(with the final's window) is never queued behind one; `finish()` reuses it instead of
decoding again; and the listen stage's `Turn.pause_transcript` holds what was said
before the pause while it lasts, and nothing while the person speaks."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.events import FinalTranscript
from bench.stt import normalize
from speech.audio import AudioChunk
from speech.piper_tts import PiperSynthesizer
from speech.whisper_stt import PAUSE_SECONDS, WhisperOptions, WhisperRecognizer
from tests.integration.test_live_latency import hands_free_assistant, piper_says

RATE = 16000
BLOCK = 480  # 30 ms, as the microphone delivers it
PAUSE_WINDOW = 8.0
"""A final's window apart from the partials' (0: the audio plus a pad)."""


@pytest.fixture(scope="module")
def voice(piper_voice_onnx: Path) -> PiperSynthesizer:
    return PiperSynthesizer(piper_voice_onnx, deterministic=True)


def _recording(recognizer: WhisperRecognizer) -> tuple[list[tuple[float, int]], list[float]]:
    """(window, quiet frames) of each decode `accept` started, and the window of every
    decode the worker ran (finish()'s too)."""
    started: list[tuple[float, int]] = []
    ran: list[float] = []
    submit: Callable[[float], object] = recognizer._submit
    decode: Callable[..., object] = recognizer._decode

    def submitting(window: float) -> object:
        started.append((window, recognizer._quiet_frames))
        return submit(window)

    def decoding(samples: np.ndarray, generation: int, window: float,
                 second_pass: bool = False) -> object:
        ran.append(window)
        return decode(samples, generation, window, second_pass)

    recognizer._submit = submitting  # type: ignore[method-assign,assignment]
    recognizer._decode = decoding  # type: ignore[method-assign,assignment]
    return started, ran


def test_the_decode_in_the_pause_is_the_final(whisper_tiny_dir: Path,
                                              voice: PiperSynthesizer) -> None:
    """Fed in real time: partials with the short window, started on loud audio only; a
    decode with the final's window in each pause, and finish() reuses the last one."""
    recognizer = WhisperRecognizer(whisper_tiny_dir, options=WhisperOptions(
        window_seconds=PAUSE_WINDOW, partial_window_seconds=0.0))
    started, ran = _recording(recognizer)
    audio = AudioChunk.concatenate([piper_says(voice, "What is twelve times seven?"),
                                    AudioChunk.silence(0.6, RATE)])
    partials = []
    begun = time.monotonic()
    try:
        for n, i in enumerate(range(0, audio.frames, BLOCK)):
            time.sleep(max(0.0, begun + n * BLOCK / RATE - time.monotonic()))
            partial = recognizer.accept(AudioChunk(audio.samples[i:i + BLOCK], RATE))
            if partial is not None:
                partials.append(partial.text)
        final = recognizer.finish()
    finally:
        recognizer.close()
    assert normalize(final.text) == "what is twelve times seven"
    assert partials, "no partial transcript"
    windows = [window for window, _ in started]
    assert windows[-1] == PAUSE_WINDOW and windows.count(0.0) >= 1, started
    for window, quiet in started:  # (Piper may pause inside the sentence too)
        assert quiet >= PAUSE_SECONDS * RATE if window == PAUSE_WINDOW else quiet == 0, started
    # no decode after the end: the last pause's is the final
    assert ran.count(PAUSE_WINDOW) == windows.count(PAUSE_WINDOW), (started, ran)


def test_no_partial_starts_in_the_quiet(whisper_tiny_dir: Path) -> None:
    """A partial is due (more than `partial_interval_seconds` of new audio) when the audio
    goes quiet: none starts, and the first decode is the pause's, at PAUSE_SECONDS."""
    recognizer = WhisperRecognizer(whisper_tiny_dir, options=WhisperOptions(
        window_seconds=PAUSE_WINDOW, partial_interval_seconds=0.4))
    started, _ = _recording(recognizer)
    rng = np.random.default_rng(0)
    loud = (rng.standard_normal(BLOCK * 12) * 3000).astype(np.int16)  # 0.36 s
    try:
        recognizer.accept(AudioChunk(loud, RATE))
        blocks = 0
        while not started:
            recognizer.accept(AudioChunk.silence(BLOCK / RATE, RATE))
            blocks += 1
            assert blocks < 20
    finally:
        recognizer.close()
    assert started == [(PAUSE_WINDOW, blocks * BLOCK)]
    assert blocks * BLOCK >= PAUSE_SECONDS * RATE > (blocks - 1) * BLOCK


def test_a_partial_of_the_whole_request_is_the_final(whisper_tiny_dir: Path,
                                                     voice: PiperSynthesizer) -> None:
    """With the final's window, a partial that covered all the speech needs no decode in
    the pause: it is reported again once the pause begins (what was said before it) and
    finish() returns it."""
    recognizer = WhisperRecognizer(whisper_tiny_dir, options=WhisperOptions(
        window_seconds=PAUSE_WINDOW, partial_window_seconds=PAUSE_WINDOW))
    started, ran = _recording(recognizer)
    in_pause = []
    try:
        recognizer.accept(AudioChunk.silence(0.3, RATE))  # (the quiet room: clean speech)
        assert recognizer.accept(piper_says(voice, "What time is it?")) is None  # one partial
        for n in range(50):  # 1.5 s of quiet, in real time
            partial = recognizer.accept(AudioChunk.silence(BLOCK / RATE, RATE))
            if partial is not None:
                in_pause.append(((n + 1) * BLOCK, partial.text))
            time.sleep(BLOCK / RATE)
        final = recognizer.finish()
    finally:
        recognizer.close()
    assert normalize(final.text) == "what time is it"
    assert started == [(PAUSE_WINDOW, 0)] and ran == [PAUSE_WINDOW], (started, ran)
    assert in_pause and in_pause[-1][1] == final.text, in_pause
    assert in_pause[-1][0] >= PAUSE_SECONDS * RATE


@pytest.mark.slow
def test_the_pause_transcript_is_what_was_said_before_the_pause(
        piper_voice_onnx: Path, whisper_tiny_dir: Path, voice: PiperSynthesizer) -> None:
    """Hands-free, real Silero and Whisper, a long end silence: during the pause after
    "What time is it?" the turn's pause transcript says it; while "And what day is it?"
    is spoken it is empty; in the last pause it holds both."""
    first, second = piper_says(voice, "What time is it?"), piper_says(voice, "And what day is it?")
    assistant, microphone, events = hands_free_assistant(
        {"end_silence_ms": 1500, "quick_end_silence_ms": 0}, whisper_tiny_dir)
    seen: list[tuple[float, str]] = []  # (seconds of audio delivered, pause transcript)
    try:
        microphone.speak(AudioChunk.concatenate([first, AudioChunk.silence(1.0, RATE)]), 0)
        microphone.speak(second, silence_seconds=2.5)
        deadline = time.monotonic() + 30
        while not any(isinstance(e, FinalTranscript) for e in events):
            assert time.monotonic() < deadline, "the question was never heard"
            turn = assistant._ledger.current
            if turn is not None:
                seen.append((microphone.delivered * BLOCK / RATE, turn.pause_transcript))
            time.sleep(0.005)
    finally:
        assistant.shutdown()
        assistant.close()
    final = next(e for e in events if isinstance(e, FinalTranscript)).text
    second_starts = first.seconds + 1.0
    in_first_pause = {text for at, text in seen if first.seconds < at < second_starts}
    speaking_second = {text for at, text in seen
                       if second_starts + 0.3 < at < second_starts + second.seconds - 0.3}
    in_last_pause = [text for at, text in seen if at > second_starts + second.seconds + 0.6]
    assert any(normalize(t) == "what time is it" for t in in_first_pause), in_first_pause
    assert speaking_second == {""}, speaking_second
    assert in_last_pause and in_last_pause[-1] == final, (in_last_pause[-1:], final)
    assert "day" in final.lower()


def test_in_noise_the_final_gets_whisper_s_own_window(whisper_tiny_dir: Path,
                                                       voice: PiperSynthesizer) -> None:
    """The short window made more errors in noise (bench/stt.py at 10 dB SNR): there the
    final is decoded with the 30 s window, on clean speech with the short one."""
    from bench.stt import with_noise

    recognizer = WhisperRecognizer(whisper_tiny_dir, options=WhisperOptions(
        window_seconds=PAUSE_WINDOW, noisy_window_seconds=30.0, partial_window_seconds=0.0))
    _, ran = _recording(recognizer)
    text = "What is twelve times seven?"
    clean = AudioChunk.concatenate([AudioChunk.silence(0.3, RATE), piper_says(voice, text),
                                    AudioChunk.silence(0.3, RATE)])
    heard = {}
    try:
        for name, audio in (("clean", clean), ("noisy", with_noise(clean, 10, seed=0))):
            ran.clear()
            for i in range(0, audio.frames, BLOCK):
                recognizer.accept(AudioChunk(audio.samples[i:i + BLOCK], RATE))
            heard[name] = (recognizer.finish().text, [w for w in ran if w])
    finally:
        recognizer.close()
    assert normalize(heard["clean"][0]) == normalize(heard["noisy"][0]) == normalize(text)
    assert set(heard["clean"][1]) == {PAUSE_WINDOW}, heard
    assert set(heard["noisy"][1]) == {30.0}, heard
