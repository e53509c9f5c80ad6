"""Conversation memory (`engine.conversation.fit_to_context`) with a word-counting engine.

The engine here only counts tokens (one per word plus a per-message overhead, like a
chat template adds); the real-tokenizer version of these checks runs against llama.cpp
in tests/integration/test_llama_engine.py.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence

import pytest

from engine.base import ChatEngine, ChatMessage, GenerationOptions, GenerationStats
from engine.conversation import fit_to_context, limit_turns
from engine.errors import ContextOverflowError

OVERHEAD = 3  # tokens a template spends on each message's role markers


class CountingEngine(ChatEngine):
    """Counts prompt tokens as words; cannot generate."""

    def __init__(self, context_length: int) -> None:
        self._context_length = context_length
        self.count_calls = 0

    @property
    def context_length(self) -> int:
        return self._context_length

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return " ".join("w" for _ in tokens)

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        self.count_calls += 1
        return sum(len(self.tokenize(m.content)) + OVERHEAD for m in messages) + 2

    def chat(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        raise NotImplementedError

    @property
    def last_stats(self) -> GenerationStats | None:
        return None


SYSTEM = ChatMessage("system", "you are a terse helpful assistant")


def _conversation(turns: int, words: int = 10) -> list[ChatMessage]:
    messages = [SYSTEM]
    for i in range(turns):
        messages.append(ChatMessage("user", f"question {i} " + "q " * words))
        messages.append(ChatMessage("assistant", f"answer {i} " + "a " * words))
    messages.append(ChatMessage("user", "the latest question"))
    return messages


def test_short_conversation_is_kept_whole() -> None:
    engine = CountingEngine(context_length=2048)
    messages = _conversation(3)
    assert fit_to_context(engine, messages, max_reply_tokens=256) == messages


def test_long_conversation_keeps_system_prompt_and_latest_turns() -> None:
    engine = CountingEngine(context_length=200)
    messages = _conversation(40)
    kept = fit_to_context(engine, messages, max_reply_tokens=64, drop_step=1)
    assert kept[0] == SYSTEM
    assert kept[-1] == messages[-1]
    assert kept[1].role == "user"  # never starts with an orphaned answer
    assert kept == [SYSTEM, *messages[len(messages) - len(kept) + 1:]]
    assert engine.count_prompt_tokens(kept) + 64 <= 200
    # as many turns as fit: one more exchange would overflow
    one_more = [SYSTEM, *messages[len(messages) - len(kept) - 1:]]
    assert engine.count_prompt_tokens(one_more) + 64 > 200


def test_every_turn_of_a_growing_conversation_fits_and_the_cut_moves_rarely() -> None:
    engine = CountingEngine(context_length=160)
    history = [SYSTEM]
    first_kept: list[ChatMessage] = []
    for turn in range(40):
        history.append(ChatMessage("user", f"turn {turn} " + "word " * (turn % 7)))
        kept = fit_to_context(engine, history, max_reply_tokens=48)
        assert kept[0] == SYSTEM and kept[-1] == history[-1]
        assert kept[1].role == "user"
        assert engine.count_prompt_tokens(kept) + 48 <= 160
        first_kept.append(kept[1])
        history.append(ChatMessage("assistant", "reply " * 12))
    cuts = sum(1 for a, b in itertools.pairwise(first_kept) if a is not b)
    assert 3 <= cuts <= 40 // 3  # history was dropped, but in blocks, not every turn


def test_cut_falls_on_every_fourth_user_turn() -> None:
    engine = CountingEngine(context_length=200)
    messages = _conversation(40)
    kept = fit_to_context(engine, messages, max_reply_tokens=64)
    users_before = sum(1 for m in messages[: len(messages) - len(kept) + 1] if m.role == "user")
    assert users_before % 4 == 0
    tightest = fit_to_context(engine, messages, max_reply_tokens=64, drop_step=1)
    assert len(tightest) - 8 < len(kept) <= len(tightest)


def test_binary_search_keeps_tokenizer_calls_few() -> None:
    engine = CountingEngine(context_length=300)
    fit_to_context(engine, _conversation(500), max_reply_tokens=64)
    assert engine.count_calls < 20


def test_system_prompt_alone_too_long_raises() -> None:
    engine = CountingEngine(context_length=40)
    messages = [ChatMessage("system", "word " * 60), ChatMessage("user", "hi")]
    with pytest.raises(ContextOverflowError):
        fit_to_context(engine, messages, max_reply_tokens=8)


def test_reply_longer_than_context_raises() -> None:
    with pytest.raises(ContextOverflowError):
        fit_to_context(CountingEngine(64), _conversation(1), max_reply_tokens=64)


def test_without_system_prompt_latest_turns_are_kept() -> None:
    engine = CountingEngine(context_length=120)
    messages = _conversation(20)[1:]
    kept = fit_to_context(engine, messages, max_reply_tokens=32)
    assert kept[0].role == "user" and kept[-1] == messages[-1]
    assert engine.count_prompt_tokens(kept) + 32 <= 120


def test_limit_turns_keeps_system_and_at_most_n_earlier_turns_in_blocks() -> None:
    history = [SYSTEM]
    starts = []
    for turn in range(30):
        history.append(ChatMessage("user", f"q{turn}"))
        kept = limit_turns(history, max_earlier_turns=8)
        users = [m.content for m in kept if m.role == "user"]
        assert kept[0] == SYSTEM and users[-1] == f"q{turn}"
        assert min(turn, 8 - 4) <= len(users) - 1 <= 8
        starts.append(users[0])
        history.append(ChatMessage("assistant", f"a{turn}"))
    assert len(set(starts)) <= 1 + (30 - 8) // 4 + 1  # the start moves in blocks


def test_limit_turns_small_and_zero_limits() -> None:
    history = _conversation(5)
    one = limit_turns(history, max_earlier_turns=1)
    assert [m.role for m in one] == ["system", "user", "assistant", "user"]
    assert limit_turns(history, max_earlier_turns=0) == [SYSTEM, history[-1]]
    assert limit_turns(history, max_earlier_turns=50) == history
