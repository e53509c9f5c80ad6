"""The skills' n-gram model compiler (speech/phrase_lm.py): a proper ARPA model whose
probabilities sum to one, deterministic, bounded by counts whatever it is given."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from speech.phrase_lm import (
    MAX_SENTENCES,
    MAX_WORDS,
    PhraseModel,
    compile_apart,
    compile_model,
    grammar_sentences,
    sentence_words,
    training_sentences,
    word_classes,
)
from speech.sentence_grammar import SentenceGrammar

SENTENCES = ["set a timer for ten minutes", "set a timer for five minutes",
             "set a pasta timer for ten minutes", "cancel the timer", "pause the timer",
             "what is two plus two", "what time is it", "stop"]


def read_arpa(text: str) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float],
                                  dict[int, int]]:
    """(log10 probabilities, log10 backoff weights, declared counts) of an ARPA text."""
    probs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    declared: dict[int, int] = {}
    order = 0
    for line in text.splitlines():
        if line.startswith("ngram "):
            n, count = line[6:].split("=")
            declared[int(n)] = int(count)
        elif line.endswith("-grams:"):
            order = int(line[1])
        elif order and line.strip() and not line.startswith("\\"):
            fields = line.split()
            gram = tuple(fields[1:1 + order])
            probs[gram] = float(fields[0])
            if len(fields) > order + 1:
                backoffs[gram] = float(fields[order + 1])
    return probs, backoffs, declared


def probability(probs: dict[tuple[str, ...], float], backoffs: dict[tuple[str, ...], float],
                gram: tuple[str, ...]) -> float:
    """P(last word | the others) by ARPA's backoff rule."""
    if gram in probs:
        return 10 ** probs[gram]
    return 10 ** backoffs.get(gram[:-1], 0.0) * probability(probs, backoffs, gram[1:])


def unseen(model: PhraseModel, sentence: str) -> int:
    return model.unseen(sentence.split())


def test_every_history_is_a_probability_distribution() -> None:
    probs, backoffs, declared = read_arpa(compile_model(SENTENCES).arpa)
    assert declared == {n: sum(len(g) == n for g in probs) for n in (1, 2, 3)}
    vocabulary = [g[0] for g in probs if len(g) == 1 and g[0] != "<s>"]
    histories = [g for g in probs if len(g) < 3 and g[-1] != "</s>"]
    assert len(histories) > 20
    for history in histories:
        total = sum(probability(probs, backoffs, (*history, w)) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-3), history
    # seen continuations are likelier than unseen ones
    assert probability(probs, backoffs, ("a", "timer", "for")) > \
        probability(probs, backoffs, ("a", "timer", "plus"))


def test_compilation_is_deterministic_and_skips_unknown_words() -> None:
    known = {w for s in SENTENCES for w in s.split()} - {"pasta"}
    first = compile_model(SENTENCES, known=known.__contains__)
    assert compile_model(list(SENTENCES), known=known.__contains__).arpa == first.arpa
    assert " pasta" not in first.arpa  # its sentence was left out, not the word alone
    with pytest.raises(ValueError, match="no sentence"):
        compile_model(SENTENCES, known=lambda word: False)


def test_compilation_is_bounded_by_counts() -> None:
    numbers = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    def many() -> Iterator[str]:  # 9**6 = 531441 distinct sentences
        return (" ".join(words) for words in itertools.product(numbers, repeat=6))

    assert len(training_sentences(many())) == MAX_SENTENCES
    model = compile_model(itertools.chain(["go " * (MAX_WORDS + 1)], many()))
    _, _, declared = read_arpa(model.arpa)
    assert "go" not in model.arpa.split()  # too long a sentence is skipped
    assert sum(declared.values()) <= 3 * MAX_SENTENCES * (MAX_WORDS + 1)
    # only the first MAX_SENTENCES were read: they all start with "one one"
    assert declared[2] < len(numbers) ** 2 + 2 * len(numbers)
    assert unseen(model, "two two two two two two") > 0


def test_unseen_counts_trigrams_outside_the_sentences_with_slot_classes() -> None:
    grammar = SentenceGrammar.from_sentences(
        ["set a timer for {duration}", "what is {number} plus {number}"],
        {"duration": ["ten minutes", "five minutes", "an hour"],
         "number": ["one", "two", "three", "ten"]})
    sentences = grammar_sentences(grammar, per_template=2)
    assert sentences == ["set a timer for ten minutes", "what is one plus two",
                         "set a timer for five minutes", "what is three plus ten"]
    model = compile_model(sentences, classes=word_classes(grammar))
    assert unseen(model, "set a timer for ten minutes") == 0
    assert unseen(model, "set a timer for an hour") == 0  # "an hour": a duration
    assert unseen(model, "what is two plus one") == 0  # numbers are alike
    assert unseen(model, "what is a timer") == 3  # pieced together
    assert model.unseen(["plus"]) == 1


def test_grammar_sentences_take_every_slot_value_in_turn_and_stop_at_the_limit() -> None:
    values = [f"n{i}" for i in range(7)]
    grammar = SentenceGrammar(templates=(("a", "{x}"), ("b", "{x}")), lists={"x": values})
    sentences = grammar_sentences(grammar, per_template=4)
    assert {s.split()[1] for s in sentences} == set(values)
    assert len(grammar_sentences(grammar, per_template=100, limit=5)) == 5


def test_sentence_words_spell_like_the_dictionary() -> None:
    assert sentence_words("Wake me at 7 a.m., o'clock!") == ["wake", "me", "at", "7", "a.m.",
                                                             "o'clock"]
    assert sentence_words("What's   the time?") == ["what's", "the", "time"]
    assert sentence_words("") == []


def test_compiling_apart_gives_the_same_model(tmp_path: Path) -> None:
    grammar = SentenceGrammar.from_sentences(
        ["set a timer for {number} minutes", "cancel the timer", "what is {number} plus two"],
        {"number": ["one", "two", "three"]})
    dictionary = tmp_path / "words.dict"
    words = grammar.vocabulary() - {"cancel"}
    dictionary.write_text("".join(f"{w} X\n{w}(2) Y\n" for w in sorted(words)))
    apart = compile_apart(grammar, dictionary)
    here = compile_model(grammar_sentences(grammar), known=words.__contains__,
                         classes=word_classes(grammar))
    assert apart == here
    assert "cancel" not in apart.arpa.split()
    assert unseen(apart, "set a timer for three minutes") == 0
    dictionary.write_text("")
    with pytest.raises(ValueError, match="no sentence"):
        compile_apart(grammar, dictionary)
