"""The skills' sentences as a `SentenceGrammar` for speech recognizers.

The templates are the ones the skills match (Home Assistant's and Hearth's, through
`IntentMatcher`), expanded by hassil into word sequences with their slots left as
`{list}` markers, then made recognizer-shaped:

- Home Assistant's per-unit number slots ("{timer_hours} hours and {timer_minutes}
  minutes") become one `{duration}`; the "and a half" forms are among its values;
- the calendar's word lists ({weekday}, {month}, {relative_day}, {holiday}) keep their
  words as values;
- wildcards get plausible values: `{duration}`, `{when}` (clock times), `{timer_name}`,
  `{number}`, `{unit}` and `{place}` (the places of `app.skills.places`); an arithmetic
  `{expression}` and a unit `{quantity}` become small sub-templates ("{number} plus
  {number}", "{number} {unit}");
- sentences about areas, floors and devices (Home Assistant's, for a smart home) and
  reminders with a free-text message are left out: no value list can stand for them.

Everything is in spoken form (numbers as words), as `SentenceGrammar` expects.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import product
from pathlib import Path

from app.skills.units import UNITS
from speech.sentence_grammar import SentenceGrammar, number_words

_HA_UNIT_SLOT = re.compile(
    r"\{timer_(?:hours|minutes|seconds)\}[- ](?:hours?|minutes?|seconds?|mins?|secs?|hrs?)\b")
_DURATIONS = re.compile(r"\{duration\}(?:,? and | )\{duration\}")
_DROPPED = re.compile(r"\{(?:area|floor|name|message|timer_half|timer_hours|timer_minutes|"
                      r"timer_seconds)\}")

TIMER_NAMES = ("pasta", "tea", "egg", "eggs", "pizza", "rice", "bread", "cake", "cookie",
               "cookies", "oven", "potato", "potatoes", "chicken", "coffee", "laundry",
               "workout", "nap", "soup", "steak", "cooking", "baking", "kitchen", "bath",
               "homework", "meditation", "break", "tv", "game", "study")
"""Timer names people often give ("a pasta timer")."""

_SUBTEMPLATES = {
    "{expression}": (
        "{number} plus {number}", "{number} minus {number}", "{number} times {number}",
        "{number} divided by {number}", "{number} multiplied by {number}",
        "{number} to the power of {number}", "{number} percent of {number}",
        "the square root of {number}", "square root of {number}", "{number} squared",
        "{number} cubed", "{number} over {number}", "half of {number}",
        "a third of {number}", "a quarter of {number}", "double {number}",
        "twice {number}"),
    "{quantity}": ("{number} {unit}", "a {unit}", "an {unit}", "one {unit}"),
    "{a}": ("{number}",), "{b}": ("{number}",), "{to_unit}": ("{unit}",),
}
"""Slots that stand for a small sentence shape (number ranges become `{number}`)."""
_WORD_LISTS = ("relative_day", "weekday", "month", "holiday")
"""Hearth's template lists whose words are the grammar's values (assets/skills/en)."""
_LISTS = {"duration", "when", "timer_name", "number", "unit", "place", *_WORD_LISTS}
"""The slot lists of the grammar (a template with any other slot is left out)."""
_HOURS = [number_words(h) for h in range(1, 13)]
_MINUTES = ["o'clock", "oh five", "ten", "fifteen", "twenty", "twenty five", "thirty",
            "thirty five", "forty", "forty five", "fifty", "fifty five"]
_DAY_PARTS = ["", "am", "pm", "in the morning", "in the evening", "tomorrow",
              "tomorrow morning", "tonight", "this afternoon"]


def numbers() -> list[str]:
    """The `{number}` values: 0-100, the hundreds, a few round numbers."""
    values = [number_words(n) for n in range(101)]
    values += [number_words(n) for n in (*range(200, 1001, 100), 120, 150, 250, 500)]
    return list(dict.fromkeys([*values, "a hundred", "a thousand", "half"]))


def durations() -> list[str]:
    """The `{duration}` values: 1-100 of each unit, halves, a few compounds."""
    values = []
    for unit in ("second", "minute", "hour"):
        article = "an" if unit == "hour" else "a"
        values += [f"{article} {unit}", f"one {unit}"]
        values += [f"{number_words(n)} {unit}s" for n in range(2, 101)]
        values += [f"{article} {unit} and a half", f"one {unit} and a half",
                   f"half {article} {unit}"]
    values += ["half an hour", "a quarter of an hour", "quarter of an hour"]
    for hours, minutes in product(range(1, 4), (5, 10, 15, 20, 30, 40, 45)):
        hour_words = "one hour" if hours == 1 else f"{number_words(hours)} hours"
        values.append(f"{hour_words} and {number_words(minutes)} minutes")
    for minutes, seconds in product(range(1, 6), (15, 30, 45)):
        minute_words = "one minute" if minutes == 1 else f"{number_words(minutes)} minutes"
        values.append(f"{minute_words} and {number_words(seconds)} seconds")
    return list(dict.fromkeys(values))


def clock_times() -> list[str]:
    """The `{when}` values: hour and minutes, with or without a part of the day."""
    values = [f"{hour} {minute}".strip() for hour, minute in product(_HOURS, ["", *_MINUTES])]
    values += [f"half past {hour}" for hour in _HOURS]
    values += [f"quarter (past|to) {hour}".replace("(past|to)", "past") for hour in _HOURS]
    values += ["noon", "midnight"]
    return [f"{time} {part}".strip() for time, part in product(values, _DAY_PARTS)]


def units() -> list[str]:
    """The `{unit}` values: each unit's singular and plural name, lower case."""
    names = []
    for unit in UNITS.values():
        names += [unit.singular.lower(), unit.plural.lower()]
    return list(dict.fromkeys([*names, "celsius", "fahrenheit"]))


def place_names() -> list[str]:
    """The places whose time Hearth tells, in spoken form ("new york", "south korea")."""
    from app.skills.places import places

    return [name for name in places() if re.fullmatch(r"[a-z' ]+", name)]


def _template_strings(language: str, extra_files: tuple[Path, ...]
                      ) -> tuple[list[str], dict[str, list[str]]]:
    """The skills' templates with slot markers, made recognizer-shaped (module doc), and
    the values of the `_WORD_LISTS`."""
    from hassil import Intents, RangeSlotList, TextSlotList
    from hassil.sample import sample_expression

    from app.skills.intents import IntentMatcher

    matcher = IntentMatcher(languages=(language,), extra_files=extra_files)
    intents = Intents.from_dict(matcher.templates(language))
    numbers_lists = {f"{{{name}}}": ("{number}",) for name, slot in intents.slot_lists.items()
                     if isinstance(slot, RangeSlotList)}
    subtemplates = {**numbers_lists, **_SUBTEMPLATES}
    found: dict[str, None] = {}
    for intent in intents.intents.values():
        for data in intent.data:
            rules = {**intents.expansion_rules, **(data.expansion_rules or {})}
            for sentence in data.sentences:
                for text in sample_expression(sentence.expression, intents.slot_lists, rules,
                                              language=language, expand_lists=False):
                    text = _HA_UNIT_SLOT.sub("{duration}", text.lower())
                    while _DURATIONS.search(text):
                        text = _DURATIONS.sub("{duration}", text)
                    if not _DROPPED.search(text):
                        found[" ".join(text.replace("{timer_name}", " {timer_name} ").split())] \
                            = None
    templates: list[str] = []
    for text in found:
        options = [subtemplates.get(token, (token,)) for token in text.split()]
        templates += [" ".join(words) for words in product(*options)]
    words: dict[str, list[str]] = {}
    for name in _WORD_LISTS:
        slot_list = intents.slot_lists.get(name)
        if isinstance(slot_list, TextSlotList):
            words[name] = list(dict.fromkeys(
                text.lower() for value in slot_list.values
                for text in sample_expression(value.text_in, {}, {}, language=language)))
    return [t for t in dict.fromkeys(templates) if not re.search(r"[^a-z' {}_]", t)
            and set(re.findall(r"\{(\w+)\}", t)) <= _LISTS], words


@lru_cache(maxsize=2)
def recognizer_grammar(language: str = "en",
                       extra_files: tuple[Path, ...] = ()) -> SentenceGrammar | None:
    """What the skills understand in `language` as a `SentenceGrammar`, with the user's
    skill files `extra_files` (their number ranges read as `{number}`; English only: a
    Chinese transcript has no words to align; None for other languages)."""
    if language != "en":
        return None
    templates, words = _template_strings(language, extra_files)
    lists = {"duration": durations(), "when": clock_times(), "timer_name": list(TIMER_NAMES),
             "number": numbers(), "unit": units(), "place": place_names(), **words}
    return SentenceGrammar.from_sentences(templates, lists)
