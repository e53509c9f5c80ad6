"""The skills' sentence grammar for recognizers (no model): its size stays bounded, the
nearest-sentence search finds the skill request behind a mishearing and nothing near an
open question, and sentences are written the way Whisper writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from speech.sentence_grammar import SentenceGrammar, spoken_words, written

pytest.importorskip("rapidfuzz")
pytest.importorskip("hassil")


@pytest.fixture(scope="module")
def grammar() -> SentenceGrammar:
    from app.skills.recognizer_grammar import recognizer_grammar

    built = recognizer_grammar("en")
    assert built is not None
    return built


def test_the_skills_grammar_is_bounded(grammar: SentenceGrammar) -> None:
    # Home Assistant's 80 000 timer sentence shapes collapse into one {duration} slot
    assert 1000 <= len(grammar.templates) <= 6000
    assert {name: len(values) <= 2000 for name, values in grammar.lists.items()} == \
        dict.fromkeys(("duration", "when", "timer_name", "number", "unit", "place",
                       "relative_day", "weekday", "month", "holiday"), True)
    assert len(list(grammar.sentences(limit=5000))) == 5000
    assert all("{" not in s for s in grammar.sentences(limit=200))
    assert {"timer", "alarm", "pasta", "fifteen", "kilometers"} <= grammar.vocabulary()


def test_misheard_skill_requests_have_the_request_among_the_nearest(
    grammar: SentenceGrammar,
) -> None:
    for heard, meant in (
        ("Set a faster timer for 12 minutes.", "set a pasta timer for twelve minutes"),
        ("Set an alarm for it 15 tomorrow morning.",
         "set an alarm for eight fifteen tomorrow morning"),
        ("What day of a week is it.", "what day of the week is it"),
        ("And I've made it to the timer.", "add five minutes to the timer"),
        ("What date is next Friday?", "what date is next friday"),
        ("How many days are in February?", "how many days are in february"),
        ("Is it morning or afternoon?", "is it morning or afternoon"),
        ("What is half of 90?", "what is half of ninety"),
        ("What time is it in Tokio?", "what time is it in tokyo"),
        ("What time will it be in 3 hours?", "what time will it be in three hours"),
    ):
        texts = [c.text for c in grammar.nearest(heard, k=12)]
        assert meant in texts, (heard, texts)


def test_two_heard_words_may_stand_for_one_template_word(grammar: SentenceGrammar) -> None:
    # Whisper (10 dB, bench/stt.py) split words it did not know; without the merge the
    # number slot took "line 9" for "ninety nine" and the right sentence was not in the 24
    best = grammar.nearest("Multip line 9 by 6.", k=4)
    assert best[0].text == "multiply nine by six", best
    texts = [c.text for c in grammar.nearest("Can birth three feet to meters.", k=20)]
    assert "convert three feet to meters" in texts, texts
    # ...but a merge costs what two words do: a dropped "please" is a whole word
    small = SentenceGrammar.from_sentences(["louder", "louder please"], {})
    assert [(c.text, c.distance) for c in small.nearest("louder please", k=2)] == \
        [("louder please", 0.0), ("louder", 1.0)]


def test_an_open_question_has_no_skill_sentence_near_it(grammar: SentenceGrammar) -> None:
    assert grammar.nearest("Who wrote Romeo and Juliet?", k=8, max_distance=2.5) == []
    assert grammar.nearest("", k=8) == []


def test_a_sentence_of_the_grammar_is_its_own_nearest(grammar: SentenceGrammar) -> None:
    best = grammar.nearest("Set a timer for 10 minutes.", k=1)[0]
    assert best.text == "set a timer for ten minutes" and best.distance == 0.0


def test_a_small_grammar_fills_its_slots_from_what_was_heard() -> None:
    grammar = SentenceGrammar.from_sentences(
        ["set a {name} timer for {number} minutes", "cancel the {name} timer"],
        {"name": ["pasta", "tea", "egg"], "number": ["one", "two", "twelve", "twenty"]})
    assert [s for s in grammar.sentences(limit=3)] == [
        "set a pasta timer for one minutes", "cancel the pasta timer",
        "set a pasta timer for two minutes"]
    texts = [c.text for c in grammar.nearest("set a pastor timer for 12 minutes", k=3)]
    assert texts[0] == "set a pasta timer for twelve minutes"
    with pytest.raises(ValueError, match="no list"):
        SentenceGrammar.from_sentences(["set {volume}"], {})


def test_spoken_and_written_forms() -> None:
    assert spoken_words("Set a timer for 10 minutes.") == \
        ["set", "a", "timer", "for", "ten", "minutes"]
    assert spoken_words("Wake me at 7:30 a.m.") == ["wake", "me", "at", "seven", "thirty", "am"]
    assert spoken_words("What is 20% of 1,500?") == \
        ["what", "is", "twenty", "percent", "of", "one", "thousand", "five", "hundred"]
    assert written("set a pasta timer for twelve minutes") == \
        "Set a pasta timer for 12 minutes."
    assert written("set an alarm for eight fifteen tomorrow morning") == \
        "Set an alarm for 8:15 tomorrow morning."
    assert written("set an alarm for seven oh five am") == "Set an alarm for 7:05 a.m."
    assert written("what is one hundred twenty five divided by five") == \
        "What is 125 divided by 5."


def test_the_users_skills_are_in_the_grammar(tmp_path: Path) -> None:
    from app.config import Settings, replace
    from app.speech_setup import skill_sentences

    (tmp_path / "porch.yaml").write_text(
        "language: en\n"
        "intents:\n"
        "  PorchLightOn:\n"
        "    data:\n"
        "      - sentences: ['turn on the porch light']\n"
        "  PorchLightDim:\n"
        "    data:\n"
        "      - sentences: ['dim the porch light to {level} percent']\n"
        "lists:\n"
        "  level:\n"
        "    range: {from: 0, to: 100}\n"
        "actions:\n"
        "  PorchLightOn: {command: 'true'}\n"
        "  PorchLightDim: {command: 'true'}\n")
    settings = replace(Settings(), "skills", user_dir=str(tmp_path))
    grammar = skill_sentences(settings)
    assert grammar is not None
    assert ("turn", "on", "the", "porch", "light") in grammar.templates
    best = grammar.nearest("Dim the torch light to 40%.", k=1)[0]
    assert best.text == "dim the porch light to forty percent"
    assert skill_sentences(replace(settings, "stt", bias=False)) is None
