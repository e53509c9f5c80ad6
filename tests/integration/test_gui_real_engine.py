"""The window with the real assistant `hearth gui` builds: llama.cpp running the bundled
SmolLM2, PocketSphinx, the bundled Piper voice, and a private PulseAudio daemon.

Typing a question runs a whole real turn (streamed reply, spoken to the null sink);
closing the window in the middle of a long reply cancels it and every pipeline
thread ends.
"""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.cli.gui_cmd import build_assistant
from app.config import Settings, replace
from app.events import Event, ReplyToken, SpeechStarted, State
from app.gui.conversation_model import ASSISTANT, USER
from app.gui.main_window import MainWindow
from tests.fakes import fake_settings
from tests.integration.pulse import pulse_server  # noqa: F401 - the fixture

LOAD_SECONDS = 60
TURN_MS = 120_000
CLOSE_BUDGET_SECONDS = 2.0
CLOSE_MARGIN_SECONDS = 2.0
"""Allowance for a loaded 2-core machine (an engine thread may be mid-token for a second)
on top of the 2 s the window gives the pipeline to stop."""


def real_settings(pulse) -> Settings:
    settings = fake_settings(
        engine={"backend": "llama-cpp", "model": "smollm2-135m-instruct-q4_1",
                "temperature": 0.0, "seed": 1, "max_tokens": 16},
        stt={"backend": "pocketsphinx", "model": "pocketsphinx-en-us"},
        # fast speech: the turn is over only once the reply has been played in real time
        tts={"backend": "piper", "voice": "piper-en_US-joe-medium", "speaking_rate": 2.0},
    )
    return replace(settings, "audio", input_device=pulse.device, output_device=pulse.device)


def wait_for(condition, timeout_seconds: float) -> None:
    """Run the event loop until `condition()` holds (module fixtures cannot use qtbot)."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QTest.qWait(20)


@pytest.fixture(scope="module")
def real_window(qapp, pulse_server, smollm2_gguf, piper_voice_onnx):  # noqa: F811
    """One window for the module: loading the real models is the slow part, so the tests
    share it (the closing test runs last and closes it)."""
    pulse_server.activate()
    window = MainWindow(real_settings(pulse_server), build_assistant)
    events: list[Event] = []
    window.bridge.event_received.connect(events.append)
    window.show()
    window.start()
    wait_for(lambda: window.session.assistant is not None, LOAD_SECONDS)
    yield window, events
    window.close()


def hearth_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hearth-") and t.is_alive()]


def test_typed_question_runs_a_turn_with_the_real_engine(real_window, qtbot):
    window, events = real_window
    # the status bar names the memory mode the stack chooser picked (app/stack.py)
    assert window.engine_label.text() == "engine: llama-cpp (mmap)"
    assert window.model_label.text() == "model: smollm2-135m-instruct-q4_1"
    assert window.ptt.isEnabled(), "the private PulseAudio source is a working microphone"
    qtbot.keyClicks(window.text_input, "What is the capital of France?")
    qtbot.keyClick(window.text_input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(window.model.messages()) == 2
                    and not window.model.message(1).pending, timeout=TURN_MS)
    user, reply = window.model.messages()
    assert (user.role, user.text) == (USER, "What is the capital of France?")
    assert reply.role == ASSISTANT and not reply.interrupted
    tokens = [e for e in events if isinstance(e, ReplyToken)]
    assert len(tokens) > 3, "the reply streamed in pieces"
    assert reply.text.strip() == "".join(t.text for t in tokens).strip()
    qtbot.waitUntil(lambda: window.state == State.IDLE, timeout=TURN_MS)
    assert any(isinstance(e, SpeechStarted) for e in events), "the reply was spoken"
    assert "first audio" in window.metrics_label.text()
    assert "tok/s" in window.metrics_label.text()


def test_closing_during_a_turn_cancels_it_and_stops_every_thread(real_window, qtbot):
    window, events = real_window
    assert hearth_threads(), "the pipeline is running"
    before = sum(isinstance(e, ReplyToken) for e in events)
    qtbot.keyClicks(window.text_input, "Tell me a story about a dragon and a knight.")
    qtbot.keyClick(window.text_input, Qt.Key.Key_Return)
    # a few tokens in, the reply is still being written or spoken
    qtbot.waitUntil(lambda: sum(isinstance(e, ReplyToken) for e in events) >= before + 3,
                    timeout=TURN_MS)
    assert window.state in (State.THINKING, State.SPEAKING), f"turn already over: {window.state}"
    started = time.monotonic()
    window.close()
    closed_in = time.monotonic() - started
    assert not window.isVisible()
    assert window.session.assistant is None
    qtbot.waitUntil(lambda: not hearth_threads(), timeout=5000)
    assert closed_in < CLOSE_BUDGET_SECONDS + CLOSE_MARGIN_SECONDS, f"close took {closed_in:.2f} s"
