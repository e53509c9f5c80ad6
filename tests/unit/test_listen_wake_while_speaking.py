"""The wake word while Hearth speaks (`[audio] listen_while_speaking`, fakes): it barges in,
except while Hearth's own reply says the wake phrase (the self-trigger guard)."""

from __future__ import annotations

from app.events import SpeechFinished, State, TurnStarted
from tests.fakes import (
    FakeEngine,
    FakeSpeaker,
    FakeSynthesizer,
    FakeWake,
    Stages,
    fake_settings,
    run_pipeline,
)

SETTINGS = {"audio": {"listen_while_speaking": True}, "wake": {"enabled": True}}


def _run(reply: str) -> list:  # type: ignore[type-arg]
    stages = Stages(engine=FakeEngine([reply]), wake=FakeWake(),
                    synthesizer=FakeSynthesizer(chunk_seconds=0.2, chunks_per_sentence=5),
                    speaker=FakeSpeaker())
    return run_pipeline([("text", "how do I wake you"), ("state", State.SPEAKING),
                         ("sleep", 0.2), ("wake",), ("sleep", 0.5), ("cancel",)],
                        stages, fake_settings(**SETTINGS))


def test_the_wake_word_interrupts_a_reply() -> None:
    events = _run("It is a fine day. The sun is out.")
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["text", "wake-word"]
    first = next(e for e in events if isinstance(e, SpeechFinished))
    assert first.turn_id == 1 and first.interrupted


def test_a_reply_that_says_the_wake_phrase_does_not_wake_hearth() -> None:
    events = _run("Just say okay nabu and I will listen. Then ask me anything.")
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["text"]
