"""engine.token_stream: the one token loop, driven through a scripted backend that records
what the loop asks of its hooks (prompt batches, cache trims, sampling)."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence

import pytest

from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.errors import EngineError
from engine.token_stream import TokenDecoder, TokenStreamEngine

END = 0


class _Letters:
    """Token n is the letter chr(ord('a') + n - 1)."""

    def feed(self, token_id: int) -> str:
        return chr(ord("a") + token_id - 1)

    def flush(self) -> str:
        return ""


class ScriptedEngine(TokenStreamEngine):
    """Prompt: one token per character of the messages; reply: `reply` tokens, then END."""

    backend_name = "scripted"

    def __init__(self, reply: Sequence[int], batch_size: int = 4,
                 fail_at: int = -1) -> None:
        super().__init__(EngineConfig(batch_size=batch_size))
        self.reply = list(reply)
        self.fail_at = fail_at
        self.cache: list[int] = []
        self.batches: list[tuple[int, int]] = []  # (position, length) of each evaluation
        self.on_evaluate = lambda: None

    @property
    def context_length(self) -> int:
        return 64

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(map(chr, tokens))

    def _render(self, messages: Sequence[ChatMessage]) -> tuple[list[int], list[str]]:
        return [ord(c) for m in messages for c in m.content], ["x"]

    def _cached_tokens(self) -> list[int]:
        return self.cache

    def _keep_cached(self, count: int) -> None:
        del self.cache[count:]

    def _evaluate(self, tokens: list[int], pos: int) -> None:
        assert pos == len(self.cache)
        self.batches.append((pos, len(tokens)))
        self.cache.extend(tokens)
        self.on_evaluate()

    def _sample(self, prompt: list[int],
                options: GenerationOptions) -> Generator[int, None, None]:
        for i, token in enumerate([*self.reply, END]):
            if i == self.fail_at:
                raise ValueError("boom")
            yield token
            self._evaluate([token], len(self.cache))

    def _is_end(self, token: int) -> bool:
        return token == END

    def _decoder(self) -> TokenDecoder:
        return _Letters()


def test_prompt_in_batches_then_its_last_token_alone_and_stats() -> None:
    engine = ScriptedEngine([1, 2, 3])  # "abc"
    assert "".join(engine.chat([ChatMessage("user", "0123456789")])) == "abc"
    # 9 tokens in batches of 4, the 10th alone; then each sampled token but the end
    assert engine.batches == [(0, 4), (4, 4), (8, 1), (9, 1), (10, 1), (11, 1), (12, 1)]
    stats = engine.last_stats
    assert stats is not None
    assert (stats.prompt_tokens, stats.generated_tokens, stats.stop_reason) == (10, 3, "eos")
    assert stats.cached_prompt_tokens == 0
    assert 0 < stats.prompt_ms <= stats.first_token_ms <= stats.total_ms


def test_a_cached_prefix_is_kept_and_the_last_prompt_token_evaluated_again() -> None:
    engine = ScriptedEngine([1], batch_size=64)
    list(engine.chat([ChatMessage("user", "0123456789")]))
    engine.batches.clear()
    list(engine.chat([ChatMessage("user", "0123456789"), ChatMessage("user", "ab")]))
    assert engine.batches[:2] == [(10, 1), (11, 1)]
    assert engine.last_stats is not None and engine.last_stats.cached_prompt_tokens == 10


def test_length_limit_and_template_stop_string() -> None:
    engine = ScriptedEngine([1, 2, 3, 4])
    assert "".join(engine.chat([ChatMessage("user", "hi")], GenerationOptions(max_tokens=2))) \
        == "ab"
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "length"
    engine = ScriptedEngine([1, 24, 2])  # "a", "x" (the template's stop string), "b"
    assert "".join(engine.chat([ChatMessage("user", "hi")])) == "a"
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "stop"


def test_cancel_during_the_prompt_leaves_no_half_cache() -> None:
    engine = ScriptedEngine([1])
    cancel = threading.Event()
    engine.on_evaluate = cancel.set
    assert list(engine.chat([ChatMessage("user", "0123456789")], cancel=cancel)) == []
    assert engine.cache == [] and engine.batches == [(0, 4)]
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "cancelled"


def test_a_backend_failure_is_an_engine_error() -> None:
    engine = ScriptedEngine([1, 2], fail_at=1)
    pieces = []
    with pytest.raises(EngineError, match="scripted failed while generating: boom"):
        pieces.extend(engine.chat([ChatMessage("user", "hi")]))
    assert pieces == ["a"]
    assert engine.last_stats is not None and engine.last_stats.stop_reason == "error"
