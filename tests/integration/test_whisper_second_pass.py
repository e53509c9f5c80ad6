"""Whisper's second pass over the skills' sentences, with the real tiny.en model and
real espeak-ng speech in pink noise at 10 dB (the request set of bench/stt.py): a skill
request the first pass mishears is corrected, a general question stays as heard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.stt import espeak_request, normalize, transcribe, with_noise
from speech.whisper_stt import WhisperRecognizer

pytest.importorskip("rapidfuzz")


@pytest.fixture(scope="module")
def whisper(whisper_tiny_dir: Path) -> Iterator[WhisperRecognizer]:
    from app.skills import bias_phrases
    from app.skills.recognizer_grammar import recognizer_grammar

    recognizer = WhisperRecognizer(whisper_tiny_dir, bias_phrases=bias_phrases("en"),
                                   skill_sentences=recognizer_grammar("en"))
    yield recognizer
    recognizer.close()


def _heard(whisper: WhisperRecognizer, text: str, voice: str, wpm: int, seed: int,
           folder: Path) -> str:
    whisper.last_second_pass = None
    audio = with_noise(espeak_request(text, voice, wpm, folder), 10, seed=seed)
    return transcribe(whisper, audio)


def test_a_misheard_skill_request_is_corrected(whisper: WhisperRecognizer,
                                               tmp_path: Path) -> None:
    said = "set a pasta timer for twelve minutes"
    heard = _heard(whisper, said, "en-us+f3", 150, 2, tmp_path)
    checked = whisper.last_second_pass
    assert checked is not None and checked.replaced
    assert normalize(checked.heard) != normalize(said)  # "Set a faster timer for 12 minutes."
    assert normalize(heard) == normalize(said)


def test_a_general_question_is_left_as_heard(whisper: WhisperRecognizer,
                                            tmp_path: Path) -> None:
    said = "what is the largest ocean"
    heard = _heard(whisper, said, "en-us+f3", 150, 83, tmp_path)
    checked = whisper.last_second_pass
    # the skill sentences nearest to it were scored against the audio, and lost
    assert checked is not None and checked.sentence and not checked.replaced
    assert normalize(heard) == normalize(said)
