"""The supervisor with fake stages: a stage that raises is reported, rebuilt, and the
next turn works; a missing microphone or a failing voice degrade, told once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from app.assistant import supervisor
from app.events import (
    ErrorEvent,
    Notice,
    PartialTranscript,
    ReplyFinished,
    ReplyToken,
    SpeechStarted,
    State,
    StateChanged,
    TurnMetrics,
)
from speech.errors import AudioDeviceError
from tests.fakes import (
    EventLog,
    FakeEngine,
    FakeMicrophone,
    FakeRecognizer,
    FakeSpeaker,
    FakeSynthesizer,
    Stages,
    build_assistant,
    metrics_of,
    run_pipeline,
)


def replies(events: list) -> list[str]:
    return [e.text for e in events if isinstance(e, ReplyFinished)]


def test_engine_failure_is_reported_rebuilt_and_the_next_turn_succeeds() -> None:
    broken = FakeEngine(["never ever mind"], fail_calls=1, fail_after_tokens=2)
    fresh = FakeEngine(["Fresh answer."])
    stages = Stages(engine=broken)
    events = run_pipeline([("text", "one"), ("wait", ErrorEvent), ("state", State.IDLE),
                           ("text", "two"), ("wait", TurnMetrics, 2)],
                          stages, factories={"engine": lambda: fresh})
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [e.code for e in errors] == ["engine-failed"]
    assert "StageFailure" in errors[0].text
    changes = [e.state for e in events if isinstance(e, StateChanged)]
    assert changes[1:3] == [State.ERROR, State.IDLE]
    assert broken.closed and len(fresh.calls) == 1
    assert replies(events)[-1] == "Fresh answer."
    assert [m.interrupted for m in metrics_of(events)] == [True, False]


def test_engine_failure_without_factory_reuses_the_engine() -> None:
    engine = FakeEngine(["Answer."], fail_calls=1)
    events = run_pipeline([("text", "one"), ("wait", ErrorEvent), ("state", State.IDLE),
                           ("text", "two"), ("wait", TurnMetrics, 2)], Stages(engine=engine))
    assert replies(events)[-1] == "Answer."


def test_recognizer_failure_restarts_listening_for_the_next_turn() -> None:
    recognizer = FakeRecognizer(["hello there"], fail_accepts=1)
    stages = Stages(recognizer=recognizer)
    events = run_pipeline([
        ("press",), ("state", State.LISTENING), ("say", 0.1), ("wait", ErrorEvent),
        ("state", State.IDLE),
        ("press",), ("state", State.LISTENING), ("say", 0.1), ("release",),
        ("wait", TurnMetrics),
    ], stages)
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["stt-failed"]
    assert stages.engine.calls[0][-1].content == "hello there"
    assert len(metrics_of(events)) == 1


def test_voice_failure_degrades_to_text_only_replies_told_once() -> None:
    synthesizer = FakeSynthesizer(fail_sentences=1)
    stages = Stages(synthesizer=synthesizer, engine=FakeEngine(["One. Two.", "Three."]))
    events = run_pipeline([("text", "a"), ("wait", TurnMetrics), ("text", "b"),
                           ("wait", TurnMetrics, 2)], stages)
    notices = [e.code for e in events if isinstance(e, Notice)]
    assert notices == ["tts-failed"]
    assert replies(events) == ["One. Two.", "Three."]
    assert not any(isinstance(e, SpeechStarted) for e in events)
    assert synthesizer.sentences == []  # never asked again after the failure
    assert [m.interrupted for m in metrics_of(events)] == [False, False]


def test_voice_failure_with_a_factory_keeps_speaking_next_turn() -> None:
    fresh = FakeSynthesizer()
    stages = Stages(synthesizer=FakeSynthesizer(fail_sentences=1),
                    engine=FakeEngine(["One.", "Two."]))
    events = run_pipeline([("text", "a"), ("wait", TurnMetrics), ("text", "b"),
                           ("wait", TurnMetrics, 2)], stages,
                          factories={"synthesizer": lambda: fresh})
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["tts-failed"]
    assert fresh.sentences == ["Two."]
    assert [e.turn_id for e in events if isinstance(e, SpeechStarted)] == [2]


def test_no_microphone_means_typed_questions_told_once() -> None:
    stages = Stages(microphone=None)
    events = run_pipeline([("press",), ("release",), ("press",), ("text", "typed"),
                           ("wait", TurnMetrics)], stages)
    assert [e.code for e in events if isinstance(e, Notice)] == ["no-microphone"]
    assert "".join(e.text for e in events if isinstance(e, ReplyToken)).startswith("Hello")


def test_microphone_failure_without_factory_degrades_to_text_input() -> None:
    stages = Stages(microphone=FakeMicrophone(fail_reads=1))
    events = run_pipeline([("sleep", 0.4), ("press",), ("text", "typed"),
                           ("wait", TurnMetrics)], stages)
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["microphone-failed"]
    assert [e.code for e in events if isinstance(e, Notice)] == ["no-microphone"]
    assert len(metrics_of(events)) == 1


def test_microphone_failure_with_a_factory_reopens_it() -> None:
    fresh = FakeMicrophone()
    stages = Stages(microphone=FakeMicrophone(fail_reads=1))
    events = run_pipeline([("sleep", 0.4)], stages, factories={"microphone": lambda: fresh})
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["microphone-failed"]
    assert fresh.starts == 1
    assert not any(isinstance(e, Notice) for e in events)


def test_speaker_failure_goes_text_only() -> None:
    class BrokenSpeaker(FakeSpeaker):
        def play(self, chunk, cancel=None):  # type: ignore[no-untyped-def]
            raise OSError("device unplugged")

    stages = Stages(speaker=BrokenSpeaker())
    events = run_pipeline([("text", "a"), ("wait", TurnMetrics), ("text", "b"),
                           ("wait", TurnMetrics, 2)], stages)
    assert [e.code for e in events if isinstance(e, Notice)] == ["tts-failed"]
    assert len(replies(events)) == 2


def opener_failing(times: int, fresh: FakeMicrophone) -> tuple[Callable[[], FakeMicrophone],
                                                                list[int]]:
    """A microphone factory that raises `times` times, then returns `fresh`; and the list
    its attempts are counted in."""
    attempts: list[int] = []

    def open_microphone() -> FakeMicrophone:
        attempts.append(len(attempts))
        if len(attempts) <= times:
            raise AudioDeviceError("no such device")
        return fresh

    return open_microphone, attempts


def speak_once_the_microphone_is_there(
    microphone: FakeMicrophone | None, factory: Callable[[], FakeMicrophone],
    fresh: FakeMicrophone, notices: int,
) -> tuple[EventLog, Stages]:
    """Start an assistant on `microphone` (None, or one that fails) with `factory`; once
    `notices` notices came, say "hello there" into `fresh` with push-to-talk."""
    stages = Stages(microphone=microphone, recognizer=FakeRecognizer(["hello there"]))
    log = EventLog()
    assistant = build_assistant(stages, factories={"microphone": factory})
    assistant.subscribe(log)
    assistant.start()
    try:
        log.wait_count(Notice, notices)
        assert assistant.voice_input and assistant.microphone is fresh
        assistant.push_to_talk_pressed()
        fresh.say(0.3)
        log.wait_for(lambda events: any(isinstance(e, PartialTranscript) for e in events))
        assistant.push_to_talk_released()
        log.wait_count(TurnMetrics)
    finally:
        assistant.shutdown()
    return log, stages


def test_a_lost_microphone_is_reopened_with_backoff_and_announced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "MIC_RETRY_FIRST_SECONDS", 0.01)
    fresh = FakeMicrophone()
    reopen, attempts = opener_failing(2, fresh)
    log, stages = speak_once_the_microphone_is_there(FakeMicrophone(fail_reads=1), reopen,
                                                     fresh, notices=1)
    assert [e.code for e in log.events if isinstance(e, ErrorEvent)] == ["microphone-failed"]
    assert [e.code for e in log.events if isinstance(e, Notice)] == ["microphone-back"]
    assert len(attempts) == 3 and fresh.starts == 1
    assert stages.engine.calls[0][-1].content == "hello there"


def test_typed_questions_work_while_the_microphone_is_gone_and_shutdown_stops_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "MIC_RETRY_FIRST_SECONDS", 0.01)
    attempts: list[int] = []

    def reopen() -> FakeMicrophone:
        attempts.append(len(attempts))
        raise AudioDeviceError("no such device")

    stages = Stages(microphone=FakeMicrophone(fail_reads=1))
    events = run_pipeline([("wait", ErrorEvent), ("press",), ("text", "typed"),
                           ("wait", TurnMetrics)], stages, factories={"microphone": reopen})
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == ["microphone-failed"]
    assert [e.code for e in events if isinstance(e, Notice)] == ["no-microphone"]  # the press
    assert len(metrics_of(events)) == 1
    tried = len(attempts)
    assert tried >= 2  # it kept trying while the turn ran
    time.sleep(0.3)
    assert len(attempts) == tried  # shut down: no more attempts


def test_a_microphone_missing_at_start_is_picked_up_when_it_appears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Pi's service can start before its USB microphone is there."""
    monkeypatch.setattr(supervisor, "MIC_RETRY_FIRST_SECONDS", 0.01)
    fresh = FakeMicrophone()
    appear_on_second_try, attempts = opener_failing(1, fresh)
    log, stages = speak_once_the_microphone_is_there(None, appear_on_second_try, fresh,
                                                     notices=2)
    assert [e.code for e in log.events if isinstance(e, Notice)] == ["no-microphone",
                                                                    "microphone-back"]
    assert len(attempts) == 2 and fresh.starts == 1
    assert stages.engine.calls[0][-1].content == "hello there"
