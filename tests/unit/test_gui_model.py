"""The conversation model and the event bridge, without any window."""

from __future__ import annotations

import threading

import pytest

from app.events import (
    AudioLevel,
    ErrorEvent,
    FinalTranscript,
    PartialTranscript,
    ReplyFinished,
    ReplyToken,
    State,
    StateChanged,
    TurnMetrics,
)
from app.gui.bridge import EventBridge
from app.gui.conversation_model import (
    ASSISTANT,
    USER,
    ConversationModel,
    MessageRole,
)
from app.gui.level_meter import level_fraction


def texts(model: ConversationModel) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in model.messages()]


def test_partial_transcripts_update_one_pending_bubble_that_the_final_settles(qapp):
    model = ConversationModel()
    for text in ("what", "what time", "what time is it"):
        model.apply_event(PartialTranscript(text, turn_id=1))
    assert model.rowCount() == 1
    index = model.index(0, 0)
    assert index.data(MessageRole.PENDING) is True
    assert index.data(MessageRole.TEXT) == "what time is it"
    model.apply_event(FinalTranscript("What time is it?", turn_id=1))
    assert texts(model) == [(USER, "What time is it?")]
    assert model.index(0, 0).data(MessageRole.PENDING) is False


def test_streaming_tokens_append_to_the_last_bubble_in_place(qapp):
    model = ConversationModel()
    model.apply_event(FinalTranscript("Hi", turn_id=3))
    inserted: list[int] = []
    changed: list[int] = []
    model.rowsInserted.connect(lambda _parent, first, _last: inserted.append(first))
    model.dataChanged.connect(lambda top, _bottom: changed.append(top.row()))
    for piece in ("Hello", " there", ".", " How", " can", " I", " help?"):
        model.apply_event(ReplyToken(piece, turn_id=3))
    assert inserted == [1], "one bubble for the whole reply"
    assert changed == [1] * 6, "every later token changes that bubble only"
    assert texts(model)[-1] == (ASSISTANT, "Hello there. How can I help?")
    assert model.message(1).pending
    model.apply_event(ReplyFinished("Hello there. How can I help?", turn_id=3))
    assert not model.message(1).pending
    assert not model.message(1).interrupted
    assert model.message(1).finished_at is not None


def test_an_interrupted_reply_keeps_its_text_and_is_marked(qapp):
    model = ConversationModel()
    model.apply_event(FinalTranscript("Tell me a story", turn_id=1))
    model.apply_event(ReplyToken("Once upon", turn_id=1))
    model.apply_event(ReplyFinished("", turn_id=1, interrupted=True))
    msg = model.message(1)
    assert (msg.text, msg.interrupted, msg.pending) == ("Once upon", True, False)
    assert model.index(1, 0).data(MessageRole.INTERRUPTED) is True


def test_a_typed_question_is_shown_at_once_and_adopted_by_its_final_transcript(qapp):
    model = ConversationModel()
    model.add_typed_question("What is 2 + 2?")
    assert texts(model) == [(USER, "What is 2 + 2?")]
    model.apply_event(FinalTranscript("What is 2 + 2?", turn_id=7))
    assert texts(model) == [(USER, "What is 2 + 2?")], "no duplicate bubble"
    assert model.message(0).turn_id == 7


def test_turns_stay_apart_and_in_order(qapp):
    model = ConversationModel()
    for turn, question, answer in ((1, "one", "first"), (2, "two", "second")):
        model.apply_event(FinalTranscript(question, turn_id=turn))
        model.apply_event(ReplyToken(answer, turn_id=turn))
        model.apply_event(ReplyFinished(answer, turn_id=turn))
    assert texts(model) == [(USER, "one"), (ASSISTANT, "first"),
                            (USER, "two"), (ASSISTANT, "second")]


def test_going_idle_drops_an_abandoned_partial_and_closes_a_streaming_reply(qapp):
    model = ConversationModel()
    model.apply_event(FinalTranscript("Q", turn_id=1))
    model.apply_event(ReplyToken("half a", turn_id=1))
    model.apply_event(PartialTranscript("mumble", turn_id=2))
    model.apply_event(StateChanged(State.IDLE, State.LISTENING, turn_id=2))
    assert texts(model) == [(USER, "Q"), (ASSISTANT, "half a")]
    assert model.message(1).interrupted and not model.message(1).pending


def test_an_empty_final_transcript_removes_the_partial_bubble(qapp):
    model = ConversationModel()
    model.apply_event(PartialTranscript("uh", turn_id=1))
    model.apply_event(FinalTranscript("", turn_id=1))
    assert model.rowCount() == 0


def test_accessible_text_names_the_speaker(qapp):
    model = ConversationModel()
    model.apply_event(FinalTranscript("Hello", turn_id=1))
    from PySide6.QtCore import Qt

    assert model.index(0, 0).data(Qt.ItemDataRole.AccessibleTextRole) == "You: Hello"


def test_bridge_delivers_events_from_worker_threads_in_order(qtbot):
    bridge = EventBridge()
    model = ConversationModel()
    bridge.event_received.connect(model.apply_event)
    received_states: list[State] = []
    errors: list[tuple[str, str]] = []
    bridge.state_changed.connect(received_states.append)
    bridge.error.connect(lambda text, code: errors.append((text, code)))
    gui_thread = threading.get_ident()
    seen_threads: set[int] = set()
    bridge.event_received.connect(lambda _e: seen_threads.add(threading.get_ident()))
    pieces = [f" t{i}" for i in range(200)]

    def pipeline() -> None:
        bridge.publish(StateChanged(State.THINKING, State.IDLE, turn_id=1))
        bridge.publish(FinalTranscript("go", turn_id=1))
        for piece in pieces:
            bridge.publish(ReplyToken(piece, turn_id=1))
            bridge.publish(AudioLevel(0.1, turn_id=1))
        bridge.publish(ErrorEvent("The voice failed; replies are text only.", "tts-failed"))
        bridge.publish(ReplyFinished("".join(pieces), turn_id=1))
        bridge.publish(TurnMetrics(first_audio_ms=900.0, turn_id=1))
        bridge.publish(StateChanged(State.IDLE, State.THINKING, turn_id=1))

    worker = threading.Thread(target=pipeline)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: received_states == [State.THINKING, State.IDLE], timeout=5000)
    assert seen_threads == {gui_thread}, "slots run on the GUI thread only"
    assert texts(model) == [(USER, "go"), (ASSISTANT, "".join(pieces))]
    assert errors == [("The voice failed; replies are text only.", "tts-failed")]


def test_a_closed_bridge_drops_late_events(qtbot):
    bridge = EventBridge()
    got: list[object] = []
    bridge.event_received.connect(got.append)
    bridge.publish(FinalTranscript("before", turn_id=1))
    qtbot.waitUntil(lambda: len(got) == 1, timeout=2000)
    bridge.close()
    bridge.publish(FinalTranscript("after", turn_id=1))
    qtbot.wait(50)
    assert len(got) == 1


@pytest.mark.parametrize(("rms", "fill"), [(0.0, 0.0), (1.0, 1.0), (0.001, 0.0), (0.01, 1 / 3),
                                           (0.1, 2 / 3), (2.0, 1.0)])
def test_level_meter_uses_a_decibel_scale(rms, fill):
    assert level_fraction(rms) == pytest.approx(fill, abs=1e-6)
