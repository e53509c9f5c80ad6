"""Numbers said in words or written in digits, in English and Chinese, to values.

The skills read numbers out of recognizer transcripts ("two hundred and fifty",
"three point five", "二百五十", "两个半") and typed text ("250", "3.5", "1,000").
A parser takes the whole text or nothing: anything it does not recognize makes it
return None, so a skill declines rather than guesses.
"""

from __future__ import annotations

import re

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_EN_FRACTIONS = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}
_DIGITS = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_SMALL = {"十": 10, "百": 100, "千": 1000}
_ZH_LARGE = {"万": 10_000, "亿": 100_000_000}


def parse_number(text: str, language: str) -> float | None:
    """The value of `text` when all of it is one number, else None."""
    text = text.strip()
    if not text:
        return None
    if language == "zh":
        return _parse_zh(text)
    return _parse_en(text)


def _digits(text: str) -> float | None:
    if not _DIGITS.match(text) or not any(c.isdigit() for c in text):
        return None
    return float(text.replace(",", ""))


def _parse_en(text: str) -> float | None:
    words = text.lower().replace("-", " ").split()
    sign = 1.0
    if words and words[0] in ("minus", "negative"):
        sign, words = -1.0, words[1:]
    if not words:
        return None
    # "two and a half", "one and a quarter", "a half"
    fraction = 0.0
    if len(words) >= 2 and words[-1] in _EN_FRACTIONS and words[-2] in ("a", "an", "one"):
        fraction = _EN_FRACTIONS[words[-1]]
        words = words[:-2]
        if words and words[-1] == "and":
            words = words[:-1]
        if not words:
            return sign * fraction
    if "point" in words:
        at = words.index("point")
        whole = _en_integer(words[:at]) if at else 0.0
        decimals = [0 if w == "oh" else _EN_UNITS.get(w) for w in words[at + 1:]]
        if whole is None or not decimals or any(d is None or d > 9 for d in decimals):
            single = _digits(words[at + 1]) if len(words) == at + 2 else None
            if whole is None or single is None or "." in words[at + 1]:
                return None
            return sign * float(f"{int(whole)}.{words[at + 1]}")
        return sign * float(f"{int(whole)}." + "".join(str(d) for d in decimals))
    value = _en_integer(words)
    return None if value is None else sign * (value + fraction)


def _en_integer(words: list[str]) -> float | None:
    """ "two hundred and fifty" -> 250; "1.5 million" -> 1500000; "a hundred" -> 100."""
    if not words:
        return None
    if len(words) == 1 and _digits(words[0]) is not None:
        return _digits(words[0])
    total = 0.0
    current = 0.0
    seen = False
    for i, word in enumerate(words):
        if word == "and" and seen:
            continue
        if word in ("a", "an") and i == 0 and len(words) > 1 and words[1] in _EN_SCALES:
            current, seen = 1.0, True
            continue
        number = _digits(word)
        if number is not None and not seen:
            current, seen = number, True
        elif word in _EN_UNITS:
            value = _EN_UNITS[word]
            if seen and current % 100 and value >= 10:
                return None  # "five twenty" is not one number
            if seen and current % 10 and value < 10:
                return None
            current += value
            seen = True
        elif word in _EN_SCALES and seen:
            scale = _EN_SCALES[word]
            if scale == 100:
                current *= scale
            else:
                total += current * scale
                current = 0.0
        else:
            return None
    return total + current if seen else None


def _parse_zh(text: str) -> float | None:
    text = text.replace(" ", "")
    sign = 1.0
    if text.startswith(("负", "-")):
        sign, text = -1.0, text[1:]
    if not text:
        return None
    plain = _digits(text)
    if plain is not None:
        return sign * plain
    # "两个半" (2.5), "一半" / "半" (0.5)
    if text in ("半", "一半"):
        return sign * 0.5
    if text.endswith("个半") or (text.endswith("半") and len(text) > 1):
        whole = _zh_integer(text[:-2] if text.endswith("个半") else text[:-1])
        return None if whole is None else sign * (whole + 0.5)
    if "点" in text:
        head, _, tail = text.partition("点")
        whole = _zh_integer(head) if head else 0.0
        if whole is None or not tail:
            return None
        if tail.isdigit():
            return sign * float(f"{int(whole)}.{tail}")
        digits = [_ZH_DIGITS.get(ch) for ch in tail]
        if any(d is None for d in digits):
            return None
        return sign * float(f"{int(whole)}." + "".join(str(d) for d in digits))
    whole = _zh_integer(text)
    return None if whole is None else sign * whole


def _zh_integer(text: str) -> float | None:
    """ "二百五十" -> 250, "十五" -> 15, "三万二千" -> 32000, "1万" -> 10000."""
    if not text:
        return None
    plain = _digits(text)
    if plain is not None:
        return plain
    total = 0.0
    section = 0.0
    digit: float | None = None
    last_small = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit():
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] == "."):
                j += 1
            digit = float(text[i:j])
            i = j
            continue
        if ch in _ZH_DIGITS:
            if digit is not None and digit != 0:
                return None  # "二三" is not one number
            digit = float(_ZH_DIGITS[ch])
            if digit == 0:
                last_small = 1  # "二百零五": the digit after 零 is in the units
        elif ch in _ZH_SMALL:
            unit = _ZH_SMALL[ch]
            section += (1.0 if digit is None else digit) * unit
            digit, last_small = None, unit
        elif ch in _ZH_LARGE:
            section += digit or 0.0
            total += (section or 1.0) * _ZH_LARGE[ch]
            section, digit, last_small = 0.0, None, 0
        else:
            return None
        i += 1
    if digit is not None:
        # "三百五" means 350: a trailing digit counts in the unit below the last one
        section += digit * (last_small // 10 if last_small >= 100 else 1)
    return total + section
