"""Whisper's short encoder window and clean open questions, with the real tiny.en model,
the bias prompt and skill grammar as Hearth runs them, and Piper's voice: an open question
the 10 s window mishears (its transcripts with and without the bias prompt disagree) is
decoded again with Whisper's own 30 s window; one heard the same both ways is not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.stt import normalize
from speech.audio import AudioChunk
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.whisper_stt import WhisperOptions, WhisperRecognizer

pytest.importorskip("rapidfuzz")

RATE = 16000
BLOCK = 480


@pytest.fixture(scope="module")
def voice(piper_voice_onnx: Path) -> PiperSynthesizer:
    return PiperSynthesizer(piper_voice_onnx, deterministic=True)


def _recognizer(model_dir: Path, options: WhisperOptions) -> WhisperRecognizer:
    from app.skills import bias_phrases
    from app.skills.recognizer_grammar import recognizer_grammar

    return WhisperRecognizer(model_dir, bias_phrases=bias_phrases("en"),
                             skill_sentences=recognizer_grammar("en"), options=options)


def _heard(recognizer: WhisperRecognizer, voice: PiperSynthesizer, text: str,
           lead_seconds: float) -> tuple[str, list[float], list[float]]:
    """(final, windows of the decodes run, their scores) of `text` after `lead_seconds` of
    quiet, fed at once (the partial it starts covers all the speech and is the pause's
    decode), then 0.3 s of quiet in blocks."""
    windows: list[float] = []
    scores: list[float] = []
    decode: Callable[..., Any] = recognizer._decode

    def decoding(samples: np.ndarray, generation: int, window: float,
                 second_pass: bool = False) -> object:
        windows.append(window)
        decoded = decode(samples, generation, window, second_pass)
        scores.append(decoded.score)
        return decoded

    recognizer._decode = decoding  # type: ignore[method-assign,assignment]
    speech = resample(AudioChunk.concatenate(list(voice.synthesize(text, threading.Event()))),
                      RATE)
    recognizer.accept(AudioChunk.concatenate([AudioChunk.silence(lead_seconds, RATE), speech]))
    for _ in range(10):
        recognizer.accept(AudioChunk.silence(BLOCK / RATE, RATE))
    return recognizer.finish().text, windows, scores


def test_an_open_question_the_short_window_mishears_is_decoded_with_30_s(
        whisper_tiny_dir: Path, voice: PiperSynthesizer) -> None:
    said = "What is the capital of France?"
    options = WhisperOptions()
    before = _recognizer(whisper_tiny_dir, replace(options, recheck_window_seconds=0.0))
    try:  # the premise: with 0.1 s of pre-roll the 10 s window alone hears "friends"
        heard, windows, scores = _heard(before, voice, said, 0.1)
    finally:
        before.close()
    assert normalize(heard) == "what is the capital of friends" and windows == [10.0], heard
    # ...with a score low enough to be rechecked
    assert scores[0] < options.recheck_below_score < 0, scores
    recognizer = _recognizer(whisper_tiny_dir, options)
    try:
        heard, windows, _ = _heard(recognizer, voice, said, 0.1)
    finally:
        recognizer.close()
    assert normalize(heard) == normalize(said)
    assert windows == [10.0, 30.0]


def test_an_open_question_heard_alike_is_not_decoded_again(
        whisper_tiny_dir: Path, voice: PiperSynthesizer) -> None:
    recognizer = _recognizer(whisper_tiny_dir, WhisperOptions())
    try:
        heard, windows, _ = _heard(recognizer, voice, "What is the largest ocean?", 0.1)
    finally:
        recognizer.close()
    assert normalize(heard) == "what is the largest ocean"
    assert windows == [10.0]


def test_a_request_heard_as_a_skill_sentence_is_not_rechecked(
        whisper_tiny_dir: Path, voice: PiperSynthesizer) -> None:
    """The recheck is for open questions: a transcript that is a sentence of the skills'
    grammar stays as heard, even when every transcript would be rechecked. (A fresh-clone
    run heard "What day is next Friday?" in the pause; the decode without the bias prompt
    heard "What they does next Friday?", and the 30 s decode that followed, "What day does
    next Friday.", which no skill understands.)"""
    recognizer = _recognizer(whisper_tiny_dir, WhisperOptions(recheck_below_score=0.0))
    prompts: list[list[int]] = []
    generate: Callable[..., Any] = recognizer._generate

    def generating(encoded: object, prompt: list[int], *args: Any, **kwargs: Any) -> Any:
        prompts.append(prompt)
        return generate(encoded, prompt, *args, **kwargs)

    recognizer._generate = generating  # type: ignore[method-assign]
    try:
        heard, windows, _ = _heard(recognizer, voice, "What date is next Friday?", 0.1)
    finally:
        recognizer.close()
    assert normalize(heard) in {"what date is next friday", "what day is next friday"}, heard
    assert prompts and recognizer._bare_prompt_tokens not in prompts
    assert windows == [10.0]


def test_an_open_question_far_from_every_skill_sentence_scores_only_the_nearest_few(
        whisper_tiny_dir: Path, voice: PiperSynthesizer) -> None:
    """The second pass's forced decoding costs ~5 ms a sentence on the way to the final:
    when even the nearest skill sentence is far from the transcript, only a few are
    scored (bench stt: the same 8 clean and 25 10 dB transcripts replaced as scoring 20)."""
    options = WhisperOptions()
    recognizer = _recognizer(whisper_tiny_dir, options)
    try:
        heard, _, _ = _heard(recognizer, voice, "What color is the sky?", 0.1)
    finally:
        recognizer.close()
    checked = recognizer.last_second_pass
    assert normalize(heard) == "what color is the sky"
    assert checked is not None and not checked.replaced
    assert min(d for _, _, d in checked.candidates) >= options.second_pass_far_distance
    assert len(checked.candidates) == options.second_pass_far_candidates < \
        options.second_pass_candidates
