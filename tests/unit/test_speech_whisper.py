"""The Whisper recognizer's pure parts (no model): model-folder checks, the bias prompt,
the silent-tail test that lets the final reuse the last decode, and the scoring
normalisation of bench/stt.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.stt import normalize, word_errors
from speech import registry
from speech.errors import SpeechModelError
from speech.whisper_stt import bias_prompt, check_model_dir, is_silent_tail


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


def test_a_quiet_tail_after_speech_is_silent_and_a_word_is_not() -> None:
    rate = 16000
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(rate) * 3000).astype(np.int16)
    hiss = (rng.standard_normal(rate // 2) * 40).astype(np.int16)
    samples = np.concatenate([speech, hiss])
    assert is_silent_tail(samples, rate, rate)            # only hiss after the decode
    assert not is_silent_tail(samples, rate // 2, rate)   # half a second of speech left
    assert is_silent_tail(samples, len(samples), rate)    # nothing left at all


def test_steady_noise_below_the_speech_counts_as_quiet() -> None:
    rate = 16000
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(rate) * 6000).astype(np.int16)
    noise = (rng.standard_normal(rate) * 300).astype(np.int16)  # 26 dB under the speech
    assert is_silent_tail(np.concatenate([speech, noise]), rate, rate)


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
