"""The Whisper recognizer's pure parts (no model): model-folder checks, the bias prompt,
the repeats a short encoder window makes Whisper say, and the scoring
normalisation of bench/stt.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.stt import normalize, word_errors
from speech import registry
from speech.errors import SpeechModelError
from speech.whisper_stt import bias_prompt, check_model_dir, without_repeats


def test_a_folder_without_the_model_files_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError, match="does not exist"):
        check_model_dir(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SpeechModelError) as info:
        check_model_dir(tmp_path)
    message = str(info.value)
    assert "model.bin" in message and "tokenizer.json" in message
    assert "vocabulary.txt" in message and "hearth models install whisper-tiny.en" in message


def test_registry_knows_whisper_and_needs_a_folder() -> None:
    assert "whisper" in registry.RECOGNIZERS
    with pytest.raises(ValueError, match="needs a model folder"):
        registry.create_recognizer("whisper", None)


def test_bias_prompt_is_the_phrases_as_sentences_within_the_word_budget() -> None:
    prompt = bias_prompt(["set a timer for", "  what time   is it ", "", "plus"])
    assert prompt == "Set a timer for. What time is it. Plus."
    long = bias_prompt([f"phrase number {i}" for i in range(100)], max_words=30)
    assert len(long.split()) <= 30 and long.startswith("Phrase number 0.")
    assert bias_prompt([]) == ""


def test_a_sentence_said_again_is_dropped() -> None:
    assert without_repeats(" What time is it? What time is it?") == "What time is it?"
    assert without_repeats("What is 2 plus 2? What is 2 plus 2? What is 2") \
        == "What is 2 plus 2?"
    assert without_repeats("Set a timer. set a timer!") == "Set a timer."
    # nearly the same, and an unfinished restart (heard live)
    assert without_repeats("Tell me, what is the weather like today? Tell me, what is the "
                           "weather light today? Tell me, tell me, tell me") \
        == "Tell me, what is the weather like today?"
    # different sentences, and repeats inside one, stay
    assert without_repeats("What time is it? What day is it?") \
        == "What time is it? What day is it?"
    assert without_repeats("Turn on the light. Turn off the radio.") \
        == "Turn on the light. Turn off the radio."
    assert without_repeats("Very, very good.") == "Very, very good."
    assert without_repeats("") == ""


@pytest.mark.parametrize(("written", "spoken"), [
    ("Set a timer for 10 minutes.", "set a timer for ten minutes"),
    ("What's 12 + 7?", "what is twelve plus seven"),
    ("Wake me up at 6 o'clock", "wake me up at six oclock"),
    ("Set an alarm for 7:30 a.m.", "set an alarm for seven thirty am"),
    ("Set an alarm for 7.30.", "set an alarm for seven thirty"),
    ("What is 3.25 times 2?", "what is three point two five times two"),
    ("Convert 100°F to Celsius.", "convert one hundred degrees fahrenheit to celsius"),
    ("What is 3.5 times 4?", "what is three point five times four"),
    ("How many metres in 2 km?", "how many meters in two kilometers"),
    ("What is 20% of 50?", "what is twenty percent of fifty"),
    ("What is 1,250 - 5?", "what is one thousand two hundred fifty minus five"),
])
def test_normalize_spells_numbers_and_symbols(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_word_errors_counts_substitutions_insertions_and_deletions() -> None:
    assert word_errors("set a timer for ten minutes", "set a timer for ten minutes") == 0
    assert word_errors("set a timer for ten minutes", "set the timer ten minutes now") == 3
