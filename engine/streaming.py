"""Helpers every backend uses while streaming a reply: stop strings and prompt reuse."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import ContextOverflowError


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists (how much of a prompt's
    KV state can be reused)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def reply_budget(prompt_tokens: int, context_length: int, max_tokens: int) -> int:
    """Tokens the reply may take: `max_tokens`, cut to what the context has left.

    Raises `ContextOverflowError` when the prompt alone fills the context."""
    if prompt_tokens >= context_length:
        raise ContextOverflowError(
            f"the prompt takes {prompt_tokens} tokens; the context holds {context_length}"
        )
    return min(max_tokens, context_length - prompt_tokens)


class StopMatcher:
    """Streams text while holding back a tail that could still become a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """The text that is safe to emit now, and whether a stop string was reached."""
        self.pending += text
        found = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if found:
            safe, self.pending = self.pending[: min(found)], ""
            return safe, True
        keep = 0
        for stop in self.stops:
            # the longest proper prefix of `stop` that the pending text ends with
            for size in range(min(len(stop) - 1, len(self.pending)), keep, -1):
                if self.pending.endswith(stop[:size]):
                    keep = size
                    break
        cut = len(self.pending) - keep
        safe, self.pending = self.pending[:cut], self.pending[cut:]
        return safe, False

    def flush(self) -> str:
        """Whatever was held back (the reply ended without a stop string)."""
        rest, self.pending = self.pending, ""
        return rest
