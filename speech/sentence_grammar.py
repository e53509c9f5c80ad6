"""Sentences a recognizer should expect: templates with slots, and the nearest ones to
what it heard.

A `SentenceGrammar` is what an application can understand, in a form any recognizer can
use without knowing where it came from (Hearth builds it from its skills' templates in
`app.skills.recognizer_grammar`): templates are word sequences in which `{list}` stands
for one value of a slot list ("set a {timer_name} timer for {number} minutes";
`lists["number"]` = "one", "two", ...). Everything is in spoken form: lower case words,
numbers spelt out.

- `nearest(text, k)`: the `k` sentences of the grammar closest to a transcript, by word
  edit distance with fuzzy word and slot-value costs (character edit distance), for a
  recognizer to re-score against the audio (Whisper's second pass).
- `sentences(limit)` and `vocabulary()`: the grammar expanded (bounded) and its words,
  for recognizers that take a phrase list or build a language model from sentences.

The search aligns the transcript with all templates at once over a prefix tree (shared
template beginnings are aligned once), so its cost grows with the number of distinct
template prefixes, not with the number of sentences the slots would expand to.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np

MAX_SLOT_WORDS = 6
"""The most words of a transcript one slot value is matched against."""
MERGE_WEIGHT = 2.0
"""One template word may match two heard words run together (a recognizer splits a word
it did not know: "multip line" for "multiply"), at their letters' edit distance times
this: the cost of two words, so that a merge is never cheaper than dropping a heard
word ("louder please" is not "louder" at 0.5)."""

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SYMBOLS = {"%": " percent ", "+": " plus ", "×": " times ", "÷": " divided by ",
            "°": " degrees ", "&": " and ", "=": " equals "}


def number_words(n: int) -> str:
    """0 <= n < 10**12 in words ("one hundred twenty three", no "and")."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return (number_words(n // size) + " " + name
                    + ("" if rest == 0 else " " + number_words(rest)))
    raise ValueError(n)


def _clock(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f" {number_words(hours)} o'clock "
    if minutes < 10:
        return f" {number_words(hours)} oh {number_words(minutes)} "
    return f" {number_words(hours)} {number_words(minutes)} "


def spoken_words(text: str) -> list[str]:
    """`text` as a recognizer writes it ("Set a timer for 10 minutes.", "7:30 a.m.") in
    the grammar's spoken form: lower-case words, numbers and symbols spelt out."""
    text = text.lower().replace("’", "'").replace("a.m.", "am").replace("p.m.", "pm")
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b", _clock, text)
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"\d{1,12}", lambda m: f" {number_words(int(m.group(0)))} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return [w for w in (word.strip("'") for word in text.split()) if w]


_NUMBER_WORDS = {word: value for value, word in enumerate(ONES)}
_NUMBER_WORDS.update({word: 10 * i for i, word in enumerate(_TENS) if word})


def _number_run(words: list[str], start: int) -> tuple[int, int] | None:
    """(value, end) of the number spelt out in words[start:end] ("one hundred twenty
    five"), or None when words[start] starts no number."""
    total, current, i = 0, None, start
    while i < len(words):
        word = words[i]
        if word in _NUMBER_WORDS and (current is None or current % 100 == 0
                                      or (current % 10 == 0 and current >= 20
                                          and _NUMBER_WORDS[word] < 10)):
            current = (current or 0) + _NUMBER_WORDS[word]
        elif word == "hundred" and current is not None and current < 10:
            current *= 100
        elif word == "thousand" and current is not None and 0 < current < 1000:
            total, current = total + current * 1000, 0
        else:
            break
        i += 1
    if current is None:
        return None
    return total + current, i


def written(sentence: str) -> str:
    """A spoken-form sentence as Whisper tends to write it: numbers as digits, a clock
    time as 7:30, a capital and a full stop ("set an alarm for seven thirty" -> "Set an
    alarm for 7:30.")."""
    words = sentence.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        found = _number_run(words, i)
        if found is None:
            out.append({"am": "a.m.", "pm": "p.m."}.get(words[i], words[i]))
            i += 1
            continue
        value, end = found
        minutes = _number_run(words, end) if value <= 12 else None
        if minutes is not None and 10 <= minutes[0] < 60 and out and out[-1] in (
                "at", "for", "to", "until", "by", "alarm"):
            out.append(f"{value}:{minutes[0]:02d}")
            end = minutes[1]
        elif end < len(words) and words[end] == "oh" and value <= 12 and \
                (after := _number_run(words, end + 1)) is not None and after[0] < 10:
            out.append(f"{value}:{after[0]:02d}")
            end = after[1]
        else:
            out.append(str(value))
        i = end
    text = " ".join(out)
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


@dataclass(frozen=True)
class Candidate:
    """A sentence of the grammar near a transcript."""

    text: str
    """The sentence, in spoken form."""
    distance: float
    """Word edit cost of the transcript against it (fuzzy words count partly)."""
    template: int
    """Index of the template it fills."""


@dataclass
class _Node:
    """A prefix of one or more templates."""

    children: dict[str, _Node] = field(default_factory=dict)
    ends: list[int] = field(default_factory=list)
    """Templates that end here."""


@dataclass(frozen=True)
class SentenceGrammar:
    """Templates over slot lists (see the module docstring); frozen once built."""

    templates: tuple[tuple[str, ...], ...]
    """Each a sequence of words and `{list}` slots."""
    lists: Mapping[str, tuple[str, ...]]
    """Slot list name -> its values (each one or more words)."""
    _root: _Node = field(default_factory=_Node, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for index, template in enumerate(self.templates):
            for token in template:
                if _is_slot(token) and token[1:-1] not in self.lists:
                    raise ValueError(f"template {' '.join(template)!r}: no list {token}")
            node = self._root
            for token in template:
                node = node.children.setdefault(token, _Node())
            node.ends.append(index)

    @classmethod
    def from_sentences(cls, templates: Sequence[str],
                       lists: Mapping[str, Sequence[str]]) -> SentenceGrammar:
        """From template strings ("set a timer for {number} minutes")."""
        unique = dict.fromkeys(tuple(t.split()) for t in templates if t.split())
        return cls(tuple(unique), {name: tuple(dict.fromkeys(values))
                                   for name, values in lists.items()})

    # ------------------------------------------------------------ for phrase lists

    def vocabulary(self) -> set[str]:
        """Every word a sentence of the grammar can have."""
        words = {t for template in self.templates for t in template if not _is_slot(t)}
        for values in self.lists.values():
            words.update(w for value in values for w in value.split())
        return words

    def sentences(self, limit: int = 10000, values_per_slot: int = 0) -> Iterator[str]:
        """The grammar's sentences, at most `limit`, each template in turn filled with
        the first `values_per_slot` values of each list (0: all), round-robin over the
        templates so a small limit still covers every template."""
        expansions = []
        for template in self.templates:
            options = [[t] if not _is_slot(t) else
                       list(self.lists[t[1:-1]][:values_per_slot or None]) for t in template]
            expansions.append(itertools.product(*options))
        count = 0
        while expansions and count < limit:
            alive = []
            for expansion in expansions:
                words = next(expansion, None)
                if words is None:
                    continue
                alive.append(expansion)
                yield " ".join(words)
                count += 1
                if count >= limit:
                    return
            expansions = alive

    # ------------------------------------------------------------ nearest sentences

    def nearest(self, text: str, k: int = 8, variants: int = 3,
                max_distance: float | None = None) -> list[Candidate]:
        """The `k` sentences nearest to the transcript `text`, nearest first: the best
        templates, each with the `variants` values nearest to what its slots aligned with.
        Templates farther than `max_distance` (default: half the heard words, plus one)
        are not followed."""
        heard = spoken_words(text)
        if not heard or not self.templates:
            return []
        limit = 0.5 * len(heard) + 1.0 if max_distance is None else max_distance
        costs = _Costs(self, heard)
        scored: list[tuple[float, int]] = []
        stack = [(self._root, np.arange(len(heard) + 1, dtype=np.float64))]
        while stack:
            node, column = stack.pop()
            scored += [(float(column[-1]), index) for index in node.ends
                       if column[-1] <= limit]
            for token, child in node.children.items():
                following = costs.step(column, token)
                if following.min() <= limit:  # costs only grow along a template
                    stack.append((child, following))
        scored.sort()
        # the nearest templates with each of their variants, then one sentence from
        # each next template: many near-equal fillings of one template must not crowd
        # out the others
        found: dict[str, Candidate] = {}
        for rank, (distance, index) in enumerate(scored):
            fillings = costs.fill(self.templates[index], variants if rank < 3 else 1)
            for extra, filled in fillings:
                if filled not in found and len(found) < k:
                    found[filled] = Candidate(filled, distance + extra, index)
            if len(found) >= k:
                break
        return sorted(found.values(), key=lambda c: c.distance)


def _is_slot(token: str) -> bool:
    return token.startswith("{") and token.endswith("}")


class _Costs:
    """Substitution costs of one transcript against the grammar's words and slot values,
    and the alignment steps that use them."""

    def __init__(self, grammar: SentenceGrammar, heard: list[str]) -> None:
        from rapidfuzz.distance import Levenshtein
        from rapidfuzz.process import cdist

        self.grammar = grammar
        self.heard = heard
        n = len(heard)
        self._word_cost: dict[str, np.ndarray] = {}
        words = sorted({t for tpl in grammar.templates for t in tpl if not _is_slot(t)})
        matrix = cdist(words, heard, scorer=Levenshtein.normalized_distance, workers=1)
        self._word_cost = {w: matrix[i] for i, w in enumerate(words)}
        # two heard words heard[j-1], heard[j] run together, for one template word
        pairs = [heard[j] + heard[j + 1] for j in range(n - 1)]
        merged = cdist(words, pairs, scorer=Levenshtein.normalized_distance, workers=1) \
            if pairs else np.zeros((len(words), 0))
        self._merge_cost = {w: MERGE_WEIGHT * merged[i] for i, w in enumerate(words)}
        # spans of the transcript a slot value may stand for: heard[a:b]
        self._spans = [(a, a + length) for a in range(n)
                       for length in range(1, MAX_SLOT_WORDS + 1) if a + length <= n]
        texts = [" ".join(heard[a:b]) for a, b in self._spans]
        span_words = np.array([b - a for a, b in self._spans], dtype=np.float64)
        self._slot: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        """list -> (matrix [a, b] of the best cost of heard[a:b], the values nearest to
        each span (best first), the cost of each value for each span)."""
        rows = np.array([a for a, _ in self._spans])
        cols = np.array([b for _, b in self._spans])
        for name, values in grammar.lists.items():
            value_words = np.array([len(v.split()) for v in values], dtype=np.float64)
            distance = cdist(texts, list(values), scorer=Levenshtein.normalized_distance,
                             workers=1)
            cost = distance * np.maximum(span_words[:, None], value_words[None, :])
            order = np.argsort(cost, axis=1, kind="stable")
            matrix = np.full((n + 1, n + 1), np.inf)
            matrix[np.arange(n + 1), np.arange(n + 1)] = value_words.min()  # said, not heard
            matrix[rows, cols] = cost[np.arange(len(texts)), order[:, 0]]
            self._slot[name] = (matrix, order, cost)
        self._span_index = {span: i for i, span in enumerate(self._spans)}
        self._steps = np.arange(n + 1, dtype=np.float64)

    def step(self, column: np.ndarray, token: str) -> np.ndarray:
        """The alignment column after `token`, from the column before it: entry j is
        the cost of the template so far against the first j heard words."""
        if _is_slot(token):
            new = (column[:, None] + self._slot[token[1:-1]][0]).min(axis=0)
        else:
            sub = self._word_cost[token]
            new = np.empty_like(column)
            new[0] = column[0] + 1.0
            new[1:] = np.minimum(column[:-1] + sub, column[1:] + 1.0)
            new[2:] = np.minimum(new[2:], column[:-2] + self._merge_cost[token])
        # heard words the template does not have: new[j] <= new[i] + (j - i)
        return np.minimum.accumulate(new - self._steps) + self._steps

    def fill(self, template: tuple[str, ...], variants: int = 1) -> list[tuple[float, str]]:
        """The template filled along its best alignment: each slot with one of the
        `variants` values nearest to what it aligned with; (extra cost, sentence) pairs,
        the best alignment's own values first."""
        n = len(self.heard)
        cost = [[float(j) for j in range(n + 1)]]
        back: list[list[tuple[int, int]]] = [[(0, j - 1) for j in range(n + 1)]]
        for token in template:
            previous = cost[-1]
            row: list[float] = []
            steps: list[tuple[int, int]] = []  # (template tokens taken, heard words before)
            for j in range(n + 1):
                if _is_slot(token):
                    matrix = self._slot[token[1:-1]][0]
                    options = [(previous[a] + float(matrix[a, j]), (1, a)) for a in range(j + 1)]
                else:
                    options = [(previous[j] + 1.0, (1, j))]
                    if j > 0:
                        options.append((previous[j - 1] + float(self._word_cost[token][j - 1]),
                                        (1, j - 1)))
                    if j > 1:
                        options.append((previous[j - 2] + float(self._merge_cost[token][j - 2]),
                                        (1, j - 2)))
                if j > 0:
                    options.append((row[j - 1] + 1.0, (0, j - 1)))
                best_cost, best_step = min(options, key=lambda o: o[0])
                row.append(best_cost)
                steps.append(best_step)
            cost.append(row)
            back.append(steps)
        choices: list[list[tuple[float, str]]] = []
        i, j = len(template), n
        while i > 0:
            taken, before = back[i][j]
            if taken:
                choices.insert(0, self._choices(template[i - 1], before, j, variants))
                i -= 1
            j = before
        filled = []
        for combination in product(*choices):
            extra = sum(c for c, _ in combination)
            filled.append((extra, " ".join(w for _, w in combination)))
        filled.sort(key=lambda f: f[0])
        return filled[:variants]

    def _choices(self, token: str, a: int, b: int, variants: int) -> list[tuple[float, str]]:
        """What `token` may be when it aligned with heard[a:b]: the word itself, or the
        `variants` values of a slot nearest to that span (extra cost over the best)."""
        if not _is_slot(token):
            return [(0.0, token)]
        name = token[1:-1]
        values = self.grammar.lists[name]
        _, order, cost = self._slot[name]
        if a == b:
            return [(0.0, min(values, key=lambda v: len(v.split())))]
        span = self._span_index[(a, b)]
        best = cost[span, order[span, 0]]
        return [(float(cost[span, v] - best), values[int(v)]) for v in order[span, :variants]]
