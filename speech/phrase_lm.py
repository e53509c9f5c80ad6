"""A small n-gram language model compiled from sentences, written as ARPA text.

The skills' sentences ("set a timer for ten minutes", "what is two plus two") become a
trigram model that PocketSphinx decodes with beside its general model, so a request
Hearth can answer is heard as one. Smoothing is interpolated Witten-Bell (it needs no
count-of-counts, which a few thousand template sentences do not give reliably), written
in ARPA's backoff form: each seen n-gram carries its interpolated probability and each
history a backoff weight that gives the unseen continuations the rest of the mass.

The compilation is deterministic (sorted output, fixed precision) and bounded: at most
`MAX_SENTENCES` sentences of at most `MAX_WORDS` words are read, so the model has at
most `order * MAX_SENTENCES * (MAX_WORDS + 1)` n-grams whatever it is given.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from speech.sentence_grammar import SentenceGrammar

MAX_SENTENCES = 20000
"""Sentences read at most (the skills' expanded templates give a few thousand)."""
MAX_WORDS = 24
"""Longer sentences are skipped: no spoken request is that long."""
START, END = "<s>", "</s>"
_WORD = re.compile(r"[^\W_][\w'.]*")


def sentence_words(sentence: str) -> list[str]:
    """The words of `sentence` as a recognizer's dictionary spells them: lower case,
    punctuation dropped except inner apostrophes and dots ("o'clock", "a.m.")."""
    words = []
    for word in _WORD.findall(sentence.lower().replace("’", "'")):
        word = word.rstrip(".'")
        if word.count(".") and not re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
            words += [w for w in word.split(".") if w]
        elif word in ("a.m", "p.m"):
            words.append(word + ".")
        elif word:
            words.append(word)
    return words


def training_sentences(sentences: Iterable[str],
                       known: Callable[[str], bool] | None = None) -> list[tuple[str, ...]]:
    """The sentences as word tuples, in order: at most MAX_SENTENCES, each of 1 to
    MAX_WORDS words that `known` accepts (a sentence with any other word is skipped, so
    the model never predicts a word the decoder cannot say)."""
    kept: list[tuple[str, ...]] = []
    for sentence in sentences:
        if len(kept) >= MAX_SENTENCES:
            break
        words = sentence_words(sentence)
        if not 0 < len(words) <= MAX_WORDS:
            continue
        if known is not None and not all(known(w) for w in words):
            continue
        kept.append(tuple(words))
    return kept


@dataclass(frozen=True)
class PhraseModel:
    """A compiled model: its ARPA text and the n-grams it was trained on."""

    arpa: str
    order: int
    seen: frozenset[tuple[str, ...]]
    """Every `order`-gram of the training sentences (with <s> and </s>), each word
    replaced by its class where it has one."""
    classes: Mapping[str, str] = field(default_factory=dict)
    """Word -> class ("seven" -> "{duration|number|when}"), for `unseen`."""

    @classmethod
    def from_arpa(cls, arpa: str, classes: Mapping[str, str] | None = None) -> PhraseModel:
        """The model of an ARPA text, its highest-order n-grams as `seen`."""
        order = max(int(line[6:].split("=")[0]) for line in arpa.splitlines()
                    if line.startswith("ngram "))
        classes = dict(classes or {})
        seen = set()
        section = arpa[arpa.index(f"\\{order}-grams:"):].splitlines()[1:]
        for line in section:
            fields = line.split()
            if len(fields) > order:
                seen.add(tuple(classes.get(w, w) for w in fields[1:1 + order]))
        return cls(arpa, order, frozenset(seen), classes)

    def unseen(self, words: Sequence[str]) -> int:
        """How many of the `order`-grams of the sentence `words` (words of one class
        counting as the same word) no training sentence had: 0 for a sentence made of
        the skills' phrases, more for one the model pieced together from fragments
        ("what do two alarm")."""
        padded = (START, *(self.classes.get(w, w) for w in words), END)
        grams = [padded[i:i + self.order] for i in range(len(padded) - self.order + 1)]
        return sum(tuple(gram) not in self.seen for gram in grams)


def compile_model(sentences: Iterable[str], *, order: int = 3,
                  known: Callable[[str], bool] | None = None,
                  classes: Mapping[str, str] | None = None) -> PhraseModel:
    """An interpolated Witten-Bell n-gram model of `sentences`.

    `known(word)` says whether the recognizer's dictionary has the word (sentences with
    other words are left out); `classes` (see `word_classes`) group words for
    `PhraseModel.unseen` only. Raises ValueError when no sentence is left."""
    if order < 1:
        raise ValueError("order must be at least 1")
    corpus = training_sentences(sentences, known)
    if not corpus:
        raise ValueError("no sentence with known words to build a language model from")
    # counts[n][history][word]: how often `word` followed the n-word `history`
    counts: list[dict[tuple[str, ...], Counter[str]]] = [defaultdict(Counter)
                                                          for _ in range(order)]
    for words in corpus:
        padded = (START, *words, END)
        for i in range(1, len(padded)):
            for n in range(order):
                if i - n < 0:
                    break
                counts[n][padded[i - n:i]][padded[i]] += 1
    vocabulary = counts[0][()]
    uniform = 1.0 / len(vocabulary)  # the level below the unigrams
    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order)]
    backoffs: dict[tuple[str, ...], float] = {}

    def lower(gram: tuple[str, ...]) -> float:
        """P(last word | the history without its first word), as the model gives it."""
        shorter = gram[1:]
        if not shorter[:-1]:
            return probs[0][shorter] if len(gram) > 1 else uniform
        if shorter in probs[len(shorter) - 1]:
            return probs[len(shorter) - 1][shorter]
        return backoffs[shorter[:-1]] * lower(shorter)

    for n in range(order):  # n: history length
        for history in sorted(counts[n]):
            following = counts[n][history]
            total = sum(following.values())
            seen = total / (total + len(following))  # Witten-Bell's weight of seen words
            mass = lower_mass = 0.0
            for word in sorted(following):
                gram = (*history, word)
                below = lower(gram)
                probs[n][gram] = seen * following[word] / total + (1 - seen) * below
                mass += probs[n][gram]
                lower_mass += below
            if history:
                backoffs[history] = _backoff_weight(mass, lower_mass)
    classes = dict(classes or {})
    seen = frozenset(tuple(classes.get(w, w) for w in gram) for gram in probs[order - 1])
    return PhraseModel(_arpa(probs, backoffs, order), order, seen, classes)


def _backoff_weight(seen_mass: float, lower_mass: float) -> float:
    """What multiplies the lower-order estimate of an unseen continuation, so that a
    history's probabilities sum to one."""
    left, lower_left = max(0.0, 1.0 - seen_mass), max(1e-12, 1.0 - lower_mass)
    return max(left, 1e-12) / lower_left


def _arpa(probs: list[dict[tuple[str, ...], float]], backoffs: dict[tuple[str, ...], float],
          order: int) -> str:
    """ARPA text: log10 probabilities and backoff weights, n-grams sorted."""
    unigrams = dict(probs[0])
    unigrams.pop((START,), None)
    lines = ["\\data\\", f"ngram 1={len(unigrams) + 1}"]
    lines += [f"ngram {n + 1}={len(probs[n])}" for n in range(1, order)]
    for n in range(order):
        lines += ["", f"\\{n + 1}-grams:"]
        table = {(START,): 0.0, **unigrams} if n == 0 else probs[n]
        for gram in sorted(table):
            logp = -99.0 if gram == (START,) else math.log10(table[gram])
            line = f"{logp:.4f} {' '.join(gram)}"
            if n < order - 1 and gram[-1] != END:
                line += f" {math.log10(backoffs.get(gram, 1.0)):.4f}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def grammar_sentences(grammar: SentenceGrammar, per_template: int = 6,
                      limit: int = MAX_SENTENCES) -> list[str]:
    """Sentences of `grammar` for an n-gram model: each template filled `per_template`
    times (at most `limit` sentences in all), each slot taking its list's values in turn
    from where that list last stopped, so every value of a list is seen in some context
    and no value (the first number, the first duration) is seen far more than others."""
    cursors: dict[str, int] = {}
    sentences: list[str] = []
    for _ in range(per_template):
        for template in grammar.templates:
            if len(sentences) >= limit:
                return sentences
            words = []
            for token in template:
                if token.startswith("{") and token.endswith("}"):
                    values = grammar.lists[token[1:-1]]
                    at = cursors.get(token, 0)
                    cursors[token] = at + 1
                    words.append(values[at % len(values)])
                else:
                    words.append(token)
            sentences.append(" ".join(words))
    return list(dict.fromkeys(sentences))


def word_classes(grammar: SentenceGrammar) -> dict[str, str]:
    """Each word that only slot values have (never a template's own words) -> the
    lists it is in, as one class name ("seven" -> "{duration|number|when}"): the n-gram
    check then asks whether a sentence has the shape of a skill sentence, not whether
    this very number followed that one in the sampled sentences."""
    literal = {t for template in grammar.templates for t in template
               if not (t.startswith("{") and t.endswith("}"))}
    lists: dict[str, set[str]] = defaultdict(set)
    for name, values in grammar.lists.items():
        for value in values:
            for word in value.split():
                if word not in literal:
                    lists[word].add(name)
    return {word: "{" + "|".join(sorted(names)) + "}" for word, names in lists.items()}


def compile_apart(grammar: SentenceGrammar, dictionary: Path | None = None,
                  timeout_seconds: float = 300.0) -> PhraseModel:
    """`compile_model` of `grammar_sentences(grammar)` (words of the pronunciation
    `dictionary` only, when given) run in a child Python process: the compilation's many
    small objects would otherwise stay in this long-lived process's heap (about 30 MB of
    resident memory for the skills' grammar, which a 512 MiB machine feels).
    Raises ValueError when the child fails."""
    request = {"templates": [list(t) for t in grammar.templates],
               "lists": {name: list(values) for name, values in grammar.lists.items()},
               "dictionary": str(dictionary) if dictionary is not None else None}
    try:
        done = subprocess.run([sys.executable, "-m", "speech.phrase_lm"],
                              input=json.dumps(request), capture_output=True, text=True,
                              timeout=timeout_seconds, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"the language model compiler did not run: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise ValueError(lines[-1])
    return PhraseModel.from_arpa(done.stdout, word_classes(grammar))


def _dictionary_words(path: Path) -> set[str]:
    """The words of a CMUdict-style pronunciation dictionary ("read(2)" is "read")."""
    with path.open(encoding="utf-8") as lines:
        return {line.split(maxsplit=1)[0].split("(", 1)[0] for line in lines if line.strip()}


def main() -> int:
    """The child of `compile_apart`: a JSON request on stdin, ARPA text on stdout."""
    from speech.sentence_grammar import SentenceGrammar

    request = json.load(sys.stdin)
    grammar = SentenceGrammar(tuple(tuple(t) for t in request["templates"]),
                              {name: tuple(v) for name, v in request["lists"].items()})
    known = (_dictionary_words(Path(request["dictionary"])).__contains__
             if request["dictionary"] else None)
    try:
        model = compile_model(grammar_sentences(grammar), known=known)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    sys.stdout.write(model.arpa)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
