"""Pipeline logic with fake stages: the order of events in a turn, streaming, barge-in,
half duplex, shutdown and conversation memory."""

from __future__ import annotations

import pytest

from app.assistant.state import StateMachine
from app.events import (
    AudioLevel,
    FinalTranscript,
    Notice,
    PartialTranscript,
    ReplyFinished,
    ReplyToken,
    SpeechFinished,
    SpeechStarted,
    State,
    StateChanged,
    TurnMetrics,
    TurnStarted,
)
from tests.fakes import (
    FakeEngine,
    FakeMicrophone,
    FakeRecognizer,
    FakeSpeaker,
    FakeSynthesizer,
    Stages,
    fake_settings,
    metrics_of,
    run_pipeline,
    speech_chunk,
)

LONG_REPLY = " ".join(f"This is sentence number {i} of a long answer." for i in range(40))


def first_index(events: list, kind: type, **attrs: object) -> int:
    for i, e in enumerate(events):
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in attrs.items()):
            return i
    raise AssertionError(f"no {kind.__name__} with {attrs} in {events}")


def states(events: list) -> list[State]:
    return [e.state for e in events if isinstance(e, StateChanged)]


def test_text_turn_events_come_in_pipeline_order() -> None:
    stages = Stages()
    events = run_pipeline([("text", "hello"), ("wait", TurnMetrics)], stages)
    for kinds in ((TurnStarted, FinalTranscript, ReplyToken, ReplyFinished, TurnMetrics),
                  (ReplyToken, SpeechStarted, SpeechFinished, TurnMetrics)):
        order = [first_index(events, k) for k in kinds]
        assert order == sorted(order)
    assert states(events) == [State.THINKING, State.SPEAKING, State.IDLE]
    reply = "".join(e.text for e in events if isinstance(e, ReplyToken))
    assert reply == "Hello there. How can I help?"
    assert stages.synthesizer.sentences == ["Hello there.", "How can I help?"]
    assert len(stages.speaker.played) == 4
    assert {e.turn_id for e in events if e.turn_id} == {1}


def test_speech_starts_while_the_model_is_still_writing() -> None:
    stages = Stages(engine=FakeEngine([LONG_REPLY[:400]], token_seconds=0.01))
    events = run_pipeline([("text", "talk"), ("wait", TurnMetrics)], stages)
    assert first_index(events, SpeechStarted) < first_index(events, ReplyFinished)
    metrics = metrics_of(events)[0]
    assert 0 < metrics.first_token_ms <= metrics.first_audio_ms < metrics.total_ms


def test_push_to_talk_turn_streams_partials_then_the_final_transcript() -> None:
    stages = Stages(recognizer=FakeRecognizer(["what time is it"]))
    events = run_pipeline([("press",), ("state", State.LISTENING), ("say", 0.15),
                           ("release",), ("wait", TurnMetrics)], stages)
    partials = [e.text for e in events if isinstance(e, PartialTranscript)]
    assert partials[:2] == ["what", "what time"]
    assert [e.text for e in events if isinstance(e, FinalTranscript)] == ["what time is it"]
    assert any(isinstance(e, AudioLevel) and e.rms > 0 for e in events)
    assert states(events)[:3] == [State.LISTENING, State.THINKING, State.SPEAKING]
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["push-to-talk"]
    assert stages.engine.calls[0][-1].content == "what time is it"
    assert metrics_of(events)[0].stt_final_ms >= 0


def test_release_without_speech_tells_the_user_and_goes_idle() -> None:
    stages = Stages()
    events = run_pipeline([("press",), ("state", State.LISTENING), ("release",),
                           ("state", State.IDLE)], stages)
    assert [n.code for n in events if isinstance(n, Notice)] == ["no-speech"]
    assert stages.engine.calls == []
    assert states(events) == [State.LISTENING, State.IDLE]


def test_barge_in_cancels_generation_synthesis_and_playback_then_listens() -> None:
    stages = Stages(engine=FakeEngine([LONG_REPLY, "Second answer."], token_seconds=0.005),
                    speaker=FakeSpeaker(speed=1.0),
                    synthesizer=FakeSynthesizer(chunk_seconds=0.5),
                    recognizer=FakeRecognizer(["first question", "second question"]))
    events = run_pipeline([
        ("press",), ("state", State.LISTENING), ("say", 0.1), ("release",),
        ("wait", SpeechStarted), ("sleep", 0.05),
        ("press",), ("state", State.LISTENING), ("say", 0.1), ("release",),
        ("wait", TurnMetrics, 2),
    ], stages)
    first = [e for e in events if e.turn_id == 1]
    assert first_index(first, ReplyFinished, interrupted=True) >= 0
    assert first_index(first, SpeechFinished, interrupted=True) >= 0
    assert metrics_of(events)[0].interrupted
    assert stages.engine.cancelled_calls == 1
    assert stages.speaker.stops, "the speaker was never told to stop"
    assert any(p.cancelled for p in stages.speaker.played)
    # the barge-in went straight from speaking to listening, and the next turn completed
    assert states(events)[2:4] == [State.SPEAKING, State.LISTENING]
    assert not metrics_of(events)[1].interrupted
    second = "".join(e.text for e in events if isinstance(e, ReplyToken) and e.turn_id == 2)
    assert second == "Second answer."
    # the interrupted reply stays in the conversation, cut where it was cut
    interrupted_reply = next(e.text for e in events if isinstance(e, ReplyFinished))
    assert 0 < len(interrupted_reply) < len(LONG_REPLY)
    assert stages.engine.calls[1][-2].content == interrupted_reply.strip()


def test_stop_cancels_the_turn_and_goes_idle() -> None:
    stages = Stages(engine=FakeEngine([LONG_REPLY], token_seconds=0.005),
                    speaker=FakeSpeaker(speed=1.0))
    events = run_pipeline([("text", "go on"), ("wait", SpeechStarted), ("cancel",),
                           ("state", State.IDLE)], stages)
    assert states(events) == [State.THINKING, State.SPEAKING, State.IDLE]
    assert metrics_of(events)[0].interrupted
    assert next(e for e in events if isinstance(e, SpeechFinished)).interrupted


def test_typing_while_speaking_replaces_the_turn() -> None:
    stages = Stages(engine=FakeEngine([LONG_REPLY, "Fine."], token_seconds=0.005),
                    speaker=FakeSpeaker(speed=1.0))
    events = run_pipeline([("text", "one"), ("wait", SpeechStarted), ("text", "two"),
                           ("wait", TurnMetrics, 2)], stages)
    assert [m.interrupted for m in metrics_of(events)] == [True, False]
    assert states(events) == [State.THINKING, State.SPEAKING, State.THINKING, State.SPEAKING,
                              State.IDLE]


def test_microphone_is_gated_while_speaking_and_flushed_after() -> None:
    mic = FakeMicrophone()
    stages = Stages(microphone=mic, engine=FakeEngine([LONG_REPLY[:200]], token_seconds=0.005),
                    speaker=FakeSpeaker(speed=1.0))
    run_pipeline([("text", "hi"), ("wait", SpeechStarted), ("say", 0.3),
                  ("wait", TurnMetrics)], stages)
    assert stages.recognizer.chunks == 0
    assert mic.flushes >= 1


def test_file_audio_is_one_turn_with_file_trigger() -> None:
    stages = Stages(microphone=None)
    audio = speech_chunk(0.5)
    events = run_pipeline([("audio", audio), ("wait", TurnMetrics)], stages)
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["file"]
    assert stages.recognizer.chunks == 5  # 0.5 s in 0.1 s blocks
    assert [e.text for e in events if isinstance(e, FinalTranscript)] == ["what time is it"]


def test_conversation_memory_keeps_system_prompt_and_recent_turns() -> None:
    settings = fake_settings(assistant={"max_history_turns": 1},
                             engine={"system_prompt": "Be brief."})
    stages = Stages(engine=FakeEngine(["A one.", "A two.", "A three."]))
    run_pipeline([("text", "q1"), ("wait", TurnMetrics, 1), ("text", "q2"),
                  ("wait", TurnMetrics, 2), ("text", "q3"), ("wait", TurnMetrics, 3)],
                 stages, settings)
    roles = [(m.role, m.content) for m in stages.engine.calls[2]]
    assert roles == [("system", "Be brief."), ("user", "q2"), ("assistant", "A two."),
                     ("user", "q3")]


def test_conversation_memory_stays_bounded_over_many_turns() -> None:
    """A kiosk runs for months: the assistant keeps only the turns it can ever send."""
    from app.assistant.pipeline import Assistant
    from tests.fakes import EventLog

    replies = [f"Answer {i}." for i in range(30)]
    assistant = Assistant(fake_settings(assistant={"max_history_turns": 2}),
                          engine=FakeEngine(replies), recognizer=None, synthesizer=None,
                          warm_up=False)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    try:
        for i in range(30):
            assistant.submit_text(f"question {i}")
            log.wait_count(TurnMetrics, i + 1)
    finally:
        assistant.shutdown()
    kept = [(m.role, m.content) for m in assistant.conversation.turns]  # what lives on in memory
    assert kept == [("user", "question 28"), ("assistant", "Answer 28."),
                    ("user", "question 29"), ("assistant", "Answer 29.")]
    assert [m.content for m in assistant.messages[1:]] == [c for _r, c in kept]


def test_shutdown_while_speaking_finishes_the_current_sentence() -> None:
    from app.assistant.pipeline import Assistant
    from tests.fakes import EventLog

    engine = FakeEngine([LONG_REPLY], token_seconds=0.002)
    speaker = FakeSpeaker(speed=1.0)
    synthesizer = FakeSynthesizer(chunk_seconds=0.1, chunks_per_sentence=3)
    assistant = Assistant(fake_settings(), engine=engine, recognizer=FakeRecognizer(),
                          synthesizer=synthesizer, speaker=speaker, warm_up=False)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    assistant.submit_text("talk")
    log.wait_count(SpeechStarted)
    assistant.shutdown(timeout=3.0)
    assert not any(p.cancelled for p in speaker.played)
    assert len(speaker.played) == 3  # exactly the sentence that was playing
    assert log.of(TurnMetrics)[0].interrupted
    assert log.of(SpeechFinished)[0].interrupted


def test_beeps_mark_listening_start_and_stop() -> None:
    # the reply's first word comes 0.25 s after the question: the stop beep gives way to
    # reply audio already waiting for the speaker (voice.py), which a loaded machine's
    # playback thread could otherwise find queued behind it
    stages = Stages(engine=FakeEngine(token_seconds=0.25))
    run_pipeline([("press",), ("state", State.LISTENING), ("say", 0.1), ("release",),
                  ("wait", TurnMetrics)], stages, fake_settings(audio={"beeps": True}))
    # two beeps, then the reply's four chunks
    assert len(stages.speaker.played) == 6
    assert stages.speaker.played[0].chunk.seconds == pytest.approx(0.12, abs=0.01)


def test_state_machine_refuses_impossible_changes() -> None:
    machine = StateMachine()
    assert machine.change(State.LISTENING) is not None
    assert machine.change(State.LISTENING) is None
    with pytest.raises(ValueError, match="listening -> speaking"):
        machine.change(State.SPEAKING)


def test_warm_up_evaluates_the_system_prompt_before_the_first_turn() -> None:
    from app.assistant.pipeline import Assistant
    from tests.fakes import EventLog

    engine = FakeEngine(["Hi."])
    assistant = Assistant(fake_settings(engine={"system_prompt": "Be kind."}), engine=engine,
                          recognizer=None, synthesizer=None)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    assistant.submit_text("hello")
    log.wait_count(TurnMetrics)
    assistant.shutdown()
    assert len(engine.calls) == 2
    assert engine.calls[0][0].content == "Be kind."
    assert [m.role for m in engine.calls[1]] == ["system", "user"]


def test_wake_word_starts_a_turn_that_the_endpointer_ends() -> None:
    from tests.fakes import FakeWake

    stages = Stages(wake=FakeWake())
    settings = fake_settings(wake={"enabled": True}, assistant={"trigger": "wake-word"})
    events = run_pipeline([("wake",), ("state", State.LISTENING), ("say", 0.6), ("pause", 0.9),
                           ("wait", TurnMetrics)], stages, settings)
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["wake-word"]
    assert [e.text for e in events if isinstance(e, FinalTranscript)] == ["what time is it"]
    assert stages.wake.chunks >= 1


def test_hands_free_turn_starts_and_ends_with_voice_activity() -> None:
    stages = Stages()
    settings = fake_settings(assistant={"trigger": "hands-free"})
    events = run_pipeline([("pause", 0.3), ("say", 0.6), ("pause", 0.9), ("wait", TurnMetrics)],
                          stages, settings)
    assert [e.trigger for e in events if isinstance(e, TurnStarted)] == ["vad"]
    assert states(events)[:2] == [State.LISTENING, State.THINKING]
    # the speech before the start was detected (pre-roll) reached the recognizer too
    assert stages.recognizer.chunks >= 1


def test_push_to_talk_mode_ignores_speech_while_idle() -> None:
    stages = Stages()
    events = run_pipeline([("say", 0.5), ("pause", 0.9)], stages)
    assert not any(isinstance(e, TurnStarted) for e in events)
    assert stages.recognizer.chunks == 0
