"""Vosk's grammar pass over skill sentences, with the real Korean model (the one Vosk
model installable here; it has a runtime graph) and espeak-ng's Korean. Hearth's skills
have no Korean sentences, so these use a few Korean commands of their own: the pass
must take a command it hears in full, leave other speech to the free pass, and
disappear cleanly when the model knows none of the sentences' words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from speech.audio import AudioChunk
from speech.espeak import EspeakSynthesizer
from speech.resample import resample
from speech.sentence_grammar import SentenceGrammar
from speech.vosk_stt import VoskRecognizer, load_model

pytestmark = pytest.mark.slow

COMMANDS = SentenceGrammar.from_sentences(
    ["알람 꺼 줘", "타이머 {number} 분", "지금 몇 시 에 요", "음악 을 틀어 주세요"],
    {"number": ["오", "십", "삼"]})


@pytest.fixture(scope="module")
def model(vosk_ko_dir: Path) -> Any:
    return load_model(vosk_ko_dir)


def hear(recognizer: VoskRecognizer, text: str) -> str:
    speech = resample(AudioChunk.concatenate(list(EspeakSynthesizer("ko").synthesize(text))),
                      16000)
    pause = AudioChunk.silence(0.5, 16000)
    audio = AudioChunk.concatenate([pause, speech, pause])
    for start in range(0, audio.frames, 480):
        recognizer.accept(AudioChunk(audio.samples[start:start + 480].copy(), 16000))
    return recognizer.finish().text


def test_a_command_is_taken_from_the_grammar_pass_and_other_speech_is_not(
        vosk_ko_dir: Path, model: Any) -> None:
    recognizer = VoskRecognizer(vosk_ko_dir, model=model, skill_sentences=COMMANDS)
    assert recognizer.skill_model is not None
    assert hear(recognizer, "알람 꺼 줘") == "알람 꺼 줘"
    assert recognizer.last_skill_text == "알람 꺼 줘"
    # a question: the grammar pass forces it into command words, which are not taken
    heard = hear(recognizer, "한국의 수도는 어디예요")
    assert heard and recognizer.last_skill_text
    assert heard != recognizer.last_skill_text
    recognizer.reset()
    assert recognizer.finish().text == ""


def test_sentences_the_model_cannot_say_leave_the_free_pass_alone(
        vosk_ko_dir: Path, model: Any) -> None:
    english = SentenceGrammar.from_sentences(["set a timer for {number} minutes"],
                                             {"number": ["five", "ten"]})
    recognizer = VoskRecognizer(vosk_ko_dir, model=model, skill_sentences=english)
    assert recognizer.skill_model is None
    assert hear(recognizer, "알람 꺼 줘")
    assert recognizer.last_skill_text is None
