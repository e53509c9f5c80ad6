"""Arithmetic said aloud: "two plus two", "15 percent of 80", "half of ninety",
"double twelve", "144的平方根", "三乘以四".

`parse_expression(text, language)` turns the words into a small expression tree, or
returns None when any word is not a number or an operator (then the skill declines
and the question goes to the language model). Numbers are read by `numbers`;
operators have the usual precedence (power, then times/divide/percent-of, then
plus/minus).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from app.skills.numbers import parse_number


class NoValueError(ValueError):
    """The expression parses but has no value (division by zero, too large)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        """"divide-by-zero" or "too-large"."""


@dataclass(frozen=True)
class Expr:
    """A node: `op` is "num" (with `value`), a binary op ("+", "-", "*", "/", "^", "%of")
    with `left`/`right`, "sqrt" with `left`, or a part or multiple of `left` said as a
    word ("half", "third", "quarter", "double", "twice", "triple")."""

    op: str
    value: float = 0.0
    left: Expr | None = None
    right: Expr | None = None

    def evaluate(self) -> float:
        if self.op == "num":
            return self.value
        a = self.left.evaluate() if self.left else 0.0
        if self.op == "sqrt":
            if a < 0:
                raise NoValueError("negative-root")
            return math.sqrt(a)
        if self.op in _SCALES:
            times, over = _SCALES[self.op]
            return a * times / over
        b = self.right.evaluate() if self.right else 0.0
        try:
            if self.op == "+":
                result = a + b
            elif self.op == "-":
                result = a - b
            elif self.op == "*":
                result = a * b
            elif self.op == "/":
                if b == 0:
                    raise NoValueError("divide-by-zero")
                result = a / b
            elif self.op == "%of":
                result = a / 100 * b
            else:
                if abs(b) > 1000:
                    raise NoValueError("too-large")
                result = float(a ** b)
        except (OverflowError, TypeError):  # a negative base to a fractional power
            raise NoValueError("too-large") from None
        if math.isinf(result) or math.isnan(result) or abs(result) >= 1e15:
            raise NoValueError("too-large")
        return result

    def canonical(self) -> str:
        """Symbols, for slots and logs: "2 + 2", "sqrt(144)", "15% of 80"."""
        if self.op == "num":
            return _num(self.value)
        if self.op == "sqrt":
            return f"sqrt({self.left.canonical() if self.left else ''})"
        if self.op in _SCALES:
            times, over = _SCALES[self.op]
            inner = self.left.canonical() if self.left else ""
            return f"{inner} / {over}" if over > 1 else f"{times} * {inner}"
        left = self.left.canonical() if self.left else ""
        right = self.right.canonical() if self.right else ""
        if self.op == "%of":
            return f"{left}% of {right}"
        return f"{left} {self.op} {right}"

    def spoken(self, language: str) -> str:
        """Words: "2 plus 2" / "2加2"."""
        if self.op == "num":
            return _num(self.value)
        left = self.left.spoken(language) if self.left else ""
        right = self.right.spoken(language) if self.right else ""
        if language == "zh":
            if self.op == "sqrt":
                return f"{left}的平方根"
            if self.op == "^":
                return f"{left}的{right}次方"
            if self.op == "%of":
                return f"{right}的百分之{left}"
            return f"{left}{_ZH_SAY[self.op]}{right}"
        if self.op == "sqrt":
            return f"the square root of {left}"
        if self.op in _SCALES:
            return f"{_EN_SCALE_SAY[self.op]} {left}"
        if self.op == "^":
            return {"2": f"{left} squared", "3": f"{left} cubed"}.get(
                right, f"{left} to the power of {right}")
        return f"{left} {_EN_SAY[self.op]} {right}"


_SCALES = {"half": (1, 2), "third": (1, 3), "quarter": (1, 4), "double": (2, 1),
           "twice": (2, 1), "triple": (3, 1)}
"""The words that take a part or a multiple of the number after them: (times, over)."""
_EN_SCALE_SAY = {"half": "half of", "third": "a third of", "quarter": "a quarter of",
                 "double": "double", "twice": "twice", "triple": "triple"}
_EN_SAY = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "%of": "percent of"}
_ZH_SAY = {"+": "加", "-": "减", "*": "乘以", "/": "除以"}


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


# operator phrases, longest first; the token each stands for
_EN_OPS = [
    ("to the power of", "^"), ("raised to the power of", "^"), ("raised to", "^"),
    ("multiplied by", "*"), ("divided by", "/"), ("percent of", "%of"), ("% of", "%of"),
    ("the square root of", "sqrt"), ("square root of", "sqrt"), ("squared", "^2"),
    ("cubed", "^3"), ("half of", "half"), ("a half of", "half"), ("one half of", "half"),
    ("a third of", "third"), ("one third of", "third"), ("a quarter of", "quarter"),
    ("one quarter of", "quarter"), ("double", "double"), ("twice", "twice"),
    ("triple", "triple"), ("plus", "+"), ("minus", "-"), ("times", "*"), ("over", "/"),
    ("into", "*"), ("x", "*"), ("+", "+"), ("*", "*"), ("×", "*"), ("/", "/"), ("÷", "/"),
    ("^", "^"), ("**", "^"), ("-", "-"),
]
_ZH_OPS = [
    ("的平方根", "sqrt-post"), ("的立方", "^3"), ("的平方", "^2"), ("次方", "^-post"),
    ("的百分之", "%of-rev"), ("根号", "sqrt"), ("乘以", "*"), ("除以", "/"), ("加上", "+"),
    ("减去", "-"), ("乘", "*"), ("加", "+"), ("减", "-"), ("+", "+"), ("*", "*"),
    ("×", "*"), ("/", "/"), ("÷", "/"), ("^", "^"), ("-", "-"),
]


def _tokens(text: str, language: str) -> list[str | float] | None:
    """Numbers (floats) and operator tokens, or None when something is neither."""
    if language == "zh":
        return _zh_tokens(text)
    text = text.lower().strip()
    text = re.sub(r"(\d)\s*%(?!\s*of)", r"\1 %", text)
    text = re.sub(r"(?<=\d)%", " %", text)
    pattern = "|".join(
        re.escape(phrase) if not phrase[0].isalpha() else rf"\b{re.escape(phrase)}\b"
        for phrase, _ in sorted(_EN_OPS, key=lambda p: -len(p[0])))
    # a hyphen is minus only between digits or spaces ("twenty-five" is a number)
    pattern = pattern.replace(r"|\-", r"|(?<=[\d\s])-(?=[\s\d])")
    ops = dict(_EN_OPS)
    tokens: list[str | float] = []
    position = 0
    for match in re.finditer(pattern, text):
        if not _operand(text[position:match.start()], "en", tokens):
            return None
        tokens.append(ops[match.group(0)])
        position = match.end()
    if not _operand(text[position:], "en", tokens):
        return None
    return tokens


def _zh_tokens(text: str) -> list[str | float] | None:
    text = text.replace(" ", "")
    pattern = "|".join(re.escape(p) for p, _ in sorted(_ZH_OPS, key=lambda p: -len(p[0])))
    ops = dict(_ZH_OPS)
    tokens: list[str | float] = []
    position = 0
    for match in re.finditer(pattern, text):
        operand = text[position:match.start()]
        token = ops[match.group(0)]
        if token == "^-post":
            # "2的10次方": the exponent is between 的 and 次方
            head, sep, exponent = operand.rpartition("的")
            if not sep or not _operand(head, "zh", tokens):
                return None
            tokens.append("^")
            if not _operand(exponent, "zh", tokens):
                return None
        elif not _operand(operand, "zh", tokens):
            return None
        else:
            tokens.append(token)
        position = match.end()
    if not _operand(text[position:], "zh", tokens):
        return None
    return tokens


_HOMOPHONES = {"to": "two", "too": "two", "for": "four", "won": "one", "ate": "eight"}
"""An operand heard as a word that sounds like a number ("what is two plus to")."""


def _operand(text: str, language: str, tokens: list[str | float]) -> bool:
    """Append the number in `text` (if any); False when `text` is not a number."""
    text = text.strip()
    if language == "en":
        text = text.removeprefix("the ")
    if not text:
        return True
    value = parse_number(_HOMOPHONES.get(text, text) if language == "en" else text, language)
    if value is None:
        return False
    tokens.append(value)
    return True


class _Parser:
    """Recursive descent over the token list."""

    def __init__(self, tokens: list[str | float]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | float | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str | float | None:
        token = self.peek()
        self.at += 1
        return token

    def expression(self) -> Expr | None:
        left = self.term()
        while left is not None and self.peek() in ("+", "-"):
            op = str(self.take())
            right = self.term()
            left = Expr(op, left=left, right=right) if right is not None else None
        return left

    def term(self) -> Expr | None:
        left = self.power()
        while left is not None and self.peek() in ("*", "/", "%of", "%of-rev"):
            op = str(self.take())
            right = self.power()
            if right is None:
                return None
            left = (Expr("%of", left=right, right=left) if op == "%of-rev"
                    else Expr(op, left=left, right=right))
        return left

    def power(self) -> Expr | None:
        base = self.unary()
        while base is not None and self.peek() in ("^", "^2", "^3", "sqrt-post"):
            op = str(self.take())
            if op == "sqrt-post":
                base = Expr("sqrt", left=base)
            elif op == "^":
                exponent = self.unary()
                base = Expr("^", left=base, right=exponent) if exponent is not None else None
            else:
                base = Expr("^", left=base, right=Expr("num", value=float(op[1])))
        return base

    def unary(self) -> Expr | None:
        token = self.take()
        if token == "sqrt" or token in _SCALES:
            inner = self.unary()
            return Expr(str(token), left=inner) if inner is not None else None
        if token == "-":
            inner = self.unary()
            if inner is not None and inner.op == "num":
                return Expr("num", value=-inner.value)
            return Expr("-", left=Expr("num", value=0.0), right=inner) if inner else None
        if isinstance(token, float):
            return Expr("num", value=token)
        return None


def parse_expression(text: str, language: str) -> Expr | None:
    """The arithmetic in `text`, or None when it is not purely arithmetic (a bare
    number is not: there must be at least one operator)."""
    tokens = _tokens(text, language)
    if not tokens or all(isinstance(t, float) for t in tokens):
        return None
    parser = _Parser(tokens)
    tree = parser.expression()
    if tree is None or tree.op == "num" or parser.at != len(tokens):
        return None  # ("minus five" is a number, not a sum)
    return tree
