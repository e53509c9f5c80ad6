"""`hearth chat`'s session logic (memory, reset, turn limit) with the fake engine."""

from __future__ import annotations

import io
import itertools

from app.cli.chat_cmd import ChatSession
from engine.base import GenerationOptions
from tests.fakes import FakeEngine


def _session(engine: FakeEngine, max_turns: int = 20) -> ChatSession:
    return ChatSession(engine, "Be brief.", GenerationOptions(max_tokens=64), max_turns)


def test_reply_streams_to_output_and_is_remembered() -> None:
    engine = FakeEngine(replies=["Paris is the capital.", "It has two million people."])
    session = _session(engine)
    out = io.StringIO()
    assert session.reply("Capital of France?", out) == "Paris is the capital."
    session.reply("How many people live there?", out)
    assert out.getvalue() == "Paris is the capital.\nIt has two million people.\n"
    second = engine.calls[1]
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[2].content == "Paris is the capital."
    assert "tok/s" in session.stats_line()


def test_reset_forgets_the_conversation() -> None:
    engine = FakeEngine()
    session = _session(engine)
    session.reply("one", io.StringIO())
    session.reset()
    session.reply("two", io.StringIO())
    assert [m.content for m in engine.calls[1]] == ["Be brief.", "two"]


def test_turn_limit_drops_old_turns_in_blocks() -> None:
    engine = FakeEngine()
    session = _session(engine, max_turns=8)
    firsts = []
    for turn in range(24):
        session.reply(f"question {turn}", io.StringIO())
        sent = engine.calls[-1]
        users = [m for m in sent if m.role == "user"]
        assert sent[0].content == "Be brief." and users[-1].content == f"question {turn}"
        assert len(users) <= 8 + 1  # earlier turns limited (plus the current question)
        if turn >= 8:
            assert len(users) >= 8 + 1 - 4  # never less than the limit minus one block
        firsts.append(users[0].content)
    changes = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert 3 <= changes <= 5  # the start moves in blocks of 4 turns, not on every turn


def test_short_turn_limit_keeps_exactly_that_many_turns() -> None:
    engine = FakeEngine()
    session = _session(engine, max_turns=1)
    for turn in range(4):
        session.reply(f"question {turn}", io.StringIO())
    assert [m.content for m in engine.calls[-1] if m.role == "user"] == [
        "question 2", "question 3"
    ]
