"""PocketSphinx with the skills' language model (issue 14, item 3): requests spoken by
the bundled Piper voice that the general model mishears are heard right, and open
questions keep the general model's transcript."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from speech.audio import AudioChunk
from speech.resample import resample
from speech.sphinx import PocketSphinxRecognizer

pytestmark = pytest.mark.slow

# the general model heard these as "cause the timer", "said an egg timer for six
# minutes", "how many grandson echoing graham"
REQUESTS = ["Pause the timer.", "Set an egg timer for six minutes.",
            "How many grams in a kilogram?"]
QUESTIONS = ["What is the capital of France?", "Why is the sky blue?",
             "What is the tallest mountain in the world?"]


@pytest.fixture(scope="module")
def recognizer(pocketsphinx_en_dir: Path) -> PocketSphinxRecognizer:
    from app.skills.recognizer_grammar import recognizer_grammar

    return PocketSphinxRecognizer(pocketsphinx_en_dir, skill_sentences=recognizer_grammar())


@pytest.fixture(scope="module")
def speak(piper_voice_onnx: Path) -> Callable[[str], AudioChunk]:
    from speech.piper_tts import PiperSynthesizer

    voice = PiperSynthesizer(piper_voice_onnx)

    def spoken(text: str) -> AudioChunk:
        speech = resample(AudioChunk.concatenate(list(voice.synthesize(text))), 16000)
        pause = AudioChunk.silence(0.3, 16000)
        return AudioChunk.concatenate([pause, speech, pause])
    return spoken


def hear(recognizer: PocketSphinxRecognizer, audio: AudioChunk) -> str:
    for start in range(0, audio.frames, 480):
        recognizer.accept(AudioChunk(audio.samples[start:start + 480].copy(), 16000))
    return recognizer.finish().text


def words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalpha() or c in " '").split())


def test_skill_requests_the_general_model_mishears_are_heard_right(
        recognizer: PocketSphinxRecognizer, speak: Callable[[str], AudioChunk]) -> None:
    right = general_right = 0
    for request in REQUESTS:
        heard = hear(recognizer, speak(request))
        choice = recognizer.last_choice
        assert choice is not None
        assert heard == (choice.skill if choice.chosen else choice.general)
        right += heard == words(request)
        general_right += choice.general == words(request)
    assert right >= len(REQUESTS) - 1, "the skills' model should hear the requests"
    assert general_right < right


def test_open_questions_keep_the_general_transcript(
        recognizer: PocketSphinxRecognizer, speak: Callable[[str], AudioChunk]) -> None:
    right = 0
    for question in QUESTIONS:
        heard = hear(recognizer, speak(question))
        choice = recognizer.last_choice
        assert choice is not None and not choice.chosen, choice
        assert heard == choice.general and heard != choice.skill
        right += heard == words(question)
    assert right >= len(QUESTIONS) - 1  # heard as asked, not as a skill sentence


def test_without_skill_sentences_there_is_one_search(pocketsphinx_en_dir: Path) -> None:
    plain = PocketSphinxRecognizer(pocketsphinx_en_dir)
    assert plain.skill_model is None
    assert hear(plain, AudioChunk.silence(0.5, 16000)) == ""
    assert plain.last_choice is None
