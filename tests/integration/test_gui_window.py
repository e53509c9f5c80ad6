"""The main window driving the real `Assistant` pipeline (offscreen Qt).

The pipeline's stages are the fakes of tests/fakes.py, so these tests are about the
GUI's side of the contract: events appear in the conversation in order, push-to-talk
(mouse, space bar, click-to-toggle) and Stop drive the pipeline, loading never
blocks, errors are banners. The real engine is exercised in test_gui_real_engine.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.events import ErrorEvent, Event, FinalTranscript, ReplyFinished, ReplyToken, State
from app.gui.conversation_model import ASSISTANT, USER, MessageRole
from app.gui.main_window import MainWindow
from app.gui.session import SessionInfo
from tests.fakes import (
    FakeEngine,
    FakeMicrophone,
    Stages,
    build_assistant,
    fake_settings,
)

WAIT_MS = 10_000


class Built:
    """What a window's factory built, for the test to poke at."""

    def __init__(self) -> None:
        self.assistant: Assistant | None = None
        self.microphone: FakeMicrophone | None = None
        self.engine: FakeEngine | None = None
        self.events: list[Event] = []


@pytest.fixture
def make_window(qtbot) -> Callable[..., tuple[MainWindow, Built]]:
    windows: list[MainWindow] = []

    def make(*, engine: FakeEngine | None = None, microphone: bool = True,
             settings: Settings | None = None, kiosk: bool = False,
             gate: threading.Event | None = None) -> tuple[MainWindow, Built]:
        built = Built()
        settings = settings or fake_settings()

        def factory(s: Settings) -> tuple[Assistant, SessionInfo]:
            if gate is not None:
                gate.wait(10)
            built.engine = engine or FakeEngine()
            built.microphone = FakeMicrophone() if microphone else None
            built.assistant = build_assistant(
                Stages(engine=built.engine, microphone=built.microphone), s)
            built.assistant.subscribe(built.events.append)
            return built.assistant, SessionInfo("fake", "fake-model", "test tier",
                                                has_microphone=microphone)

        window = MainWindow(settings, factory, kiosk=kiosk)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        window.start()
        if gate is None:
            qtbot.waitUntil(lambda: window.session.assistant is not None, timeout=WAIT_MS)
        return window, built

    yield make
    for window in windows:
        window.close()


def rows(window: MainWindow) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in window.model.messages()]


def test_push_to_talk_with_the_mouse_runs_a_turn_shown_in_order(make_window, qtbot):
    window, built = make_window()
    qtbot.mousePress(window.ptt, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state == State.LISTENING, timeout=WAIT_MS)
    assert window.state_indicator.label.text() == "Listening…"
    built.microphone.say(0.3)
    # the live partial transcript appears while the button is held
    qtbot.waitUntil(lambda: bool(rows(window)) and window.model.message(0).pending,
                    timeout=WAIT_MS)
    qtbot.mouseRelease(window.ptt, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rows(window)) == 2 and not window.model.message(1).pending,
                    timeout=WAIT_MS)
    assert rows(window) == [(USER, "what time is it"),
                            (ASSISTANT, "Hello there. How can I help?")]
    qtbot.waitUntil(lambda: window.state == State.IDLE, timeout=WAIT_MS)
    assert window.metrics_label.text(), "the status bar shows the last turn's timings"
    assert built.assistant.messages[-2].content == "what time is it"


def test_holding_the_space_bar_is_push_to_talk(make_window, qtbot):
    window, built = make_window()
    window.view.setFocus()
    qtbot.keyPress(window.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state == State.LISTENING, timeout=WAIT_MS)
    assert window.ptt.talking
    built.microphone.say(0.3)
    qtbot.wait(100)
    qtbot.keyRelease(window.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)
    assert rows(window)[0] == (USER, "what time is it")


def test_a_finger_on_the_touchscreen_holds_to_talk(make_window, qtbot):
    window, built = make_window(kiosk=True)
    finger = QTest.createTouchDevice()
    centre = window.ptt.rect().center()
    QTest.touchEvent(window.ptt, finger).press(0, centre, window.ptt).commit()
    qtbot.waitUntil(lambda: window.state == State.LISTENING, timeout=WAIT_MS)
    built.microphone.say(0.3)
    qtbot.wait(100)
    QTest.touchEvent(window.ptt, finger).release(0, centre, window.ptt).commit()
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)
    assert rows(window)[0] == (USER, "what time is it")


def test_switching_windows_while_holding_ends_the_question(make_window, qtbot):
    window, built = make_window()
    window.view.setFocus()
    qtbot.keyPress(window.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.state == State.LISTENING, timeout=WAIT_MS)
    built.microphone.say(0.3)
    qtbot.wait(100)
    QApplication.sendEvent(window, QEvent(QEvent.Type.WindowDeactivate))
    assert not window.ptt.talking
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)


def test_space_in_the_text_box_types_a_space(make_window, qtbot):
    window, _built = make_window()
    window.text_input.setFocus()
    qtbot.keyClicks(window.text_input, "a b")
    assert window.text_input.text() == "a b"
    assert window.state == State.IDLE


def test_click_to_toggle_starts_and_ends_listening_with_two_clicks(make_window, qtbot):
    settings = replace(fake_settings(), "gui", click_to_toggle=True)
    window, built = make_window(settings=settings)
    assert window.ptt.text() == "Tap to talk"
    qtbot.mouseClick(window.ptt, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state == State.LISTENING, timeout=WAIT_MS)
    built.microphone.say(0.3)
    qtbot.wait(100)
    assert window.state == State.LISTENING, "releasing the button does not end the turn"
    qtbot.mouseClick(window.ptt, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)


def test_stop_cancels_a_streaming_reply(make_window, qtbot):
    long_reply = " ".join(f"word{i}" for i in range(400))
    window, built = make_window(engine=FakeEngine([long_reply], token_seconds=0.02))
    qtbot.keyClicks(window.text_input, "Tell me a long story")
    qtbot.keyClick(window.text_input, Qt.Key.Key_Return)
    assert rows(window) == [(USER, "Tell me a long story")], "the question shows at once"
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)
    assert window.stop_button.isEnabled()
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state == State.IDLE, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model.message(1).interrupted, timeout=WAIT_MS)
    reply = window.model.message(1)
    assert 0 < len(reply.text) < len(long_reply)
    qtbot.wait(200)
    assert window.model.message(1).text == reply.text, "no tokens after Stop"
    finished = [e for e in built.events if isinstance(e, ReplyFinished)]
    assert [e.interrupted for e in finished] == [True]
    assert rows(window)[0] == (USER, "Tell me a long story"), "no duplicate question bubble"
    assert len(rows(window)) == 2


def test_escape_is_stop(make_window, qtbot):
    long_reply = " ".join(f"word{i}" for i in range(400))
    window, _built = make_window(engine=FakeEngine([long_reply], token_seconds=0.02))
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    qtbot.keyClicks(window.text_input, "Go on and on")
    qtbot.keyClick(window.text_input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(rows(window)) == 2, timeout=WAIT_MS)
    qtbot.keyClick(window.text_input, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.model.message(1).interrupted, timeout=WAIT_MS)
    assert window.state == State.IDLE


def test_loading_shows_a_busy_state_and_never_blocks(make_window, qtbot):
    gate = threading.Event()
    window, _built = make_window(gate=gate)
    qtbot.waitUntil(lambda: window.state_indicator.busy.isVisibleTo(window), timeout=WAIT_MS)
    assert not window.ptt.isEnabled() and not window.send_button.isEnabled()
    # the GUI thread is free while the factory blocks: typing works
    qtbot.keyClicks(window.text_input, "hi")
    assert window.text_input.text() == "hi"
    gate.set()
    qtbot.waitUntil(lambda: window.ptt.isEnabled(), timeout=WAIT_MS)
    assert not window.state_indicator.busy.isVisibleTo(window)
    assert window.engine_label.text() == "engine: fake"
    assert window.tier_label.text() == "RAM tier: test tier"


def test_without_a_microphone_typing_is_the_only_input(make_window, qtbot):
    window, _built = make_window(microphone=False)
    assert not window.ptt.isEnabled()
    qtbot.waitUntil(lambda: "typed questions only" in window.banner.text, timeout=WAIT_MS)
    qtbot.keyClicks(window.text_input, "Hello")
    qtbot.keyClick(window.text_input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(rows(window)) == 2 and not window.model.message(1).pending,
                    timeout=WAIT_MS)
    assert rows(window)[1][0] == ASSISTANT


def test_errors_are_banners_that_collapse_not_dialogs(make_window, qtbot):
    window, _built = make_window()
    for _ in range(3):
        window.bridge.publish(ErrorEvent("The voice failed; replies are text only.",
                                         "tts-failed"))
    qtbot.waitUntil(lambda: window.banner.count == 3, timeout=WAIT_MS)
    assert window.banner.text == "The voice failed; replies are text only."
    assert QApplication.activeModalWidget() is None
    window.banner.dismiss()
    assert not window.banner.isVisible()


def test_kiosk_mode_is_frameless_large_and_fits_800x480(make_window, qtbot):
    window, _built = make_window(kiosk=True)
    assert window.windowFlags() & Qt.WindowType.FramelessWindowHint
    assert not window.menuBar().isVisible()
    desktop, _ = make_window()
    assert window.ptt.minimumHeight() > desktop.ptt.minimumHeight()
    assert window.view.font().pointSizeF() > desktop.view.font().pointSizeF()
    hint = window.minimumSizeHint()
    assert hint.width() <= 800 and hint.height() <= 480
    window.resize(800, 480)
    assert window.exit_shortcut.key().toString() == "Ctrl+Alt+Q"
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    qtbot.keyClick(window.view, Qt.Key.Key_Q,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert window.session.assistant is None, "leaving kiosk mode shut the assistant down"


def test_a_long_history_follows_the_newest_message(make_window, qtbot):
    window, _built = make_window()
    window.resize(700, 500)
    for turn in range(1, 1501):
        window.bridge.publish(FinalTranscript(f"question {turn}", turn_id=turn))
        window.bridge.publish(ReplyToken(f"answer {turn} " + "word " * (turn % 40),
                                         turn_id=turn))
        window.bridge.publish(ReplyFinished("", turn_id=turn))
    qtbot.waitUntil(lambda: window.model.rowCount() == 3000, timeout=WAIT_MS)
    bottom = window.view.viewport().rect().bottomLeft() + QPoint(30, -10)
    qtbot.waitUntil(lambda: window.view.indexAt(bottom).row() == 2999, timeout=WAIT_MS)
    # a streamed reply keeps growing at the bottom, in view
    window.bridge.publish(FinalTranscript("one more", turn_id=2000))
    for _ in range(60):
        window.bridge.publish(ReplyToken(" more words", turn_id=2000))
    qtbot.waitUntil(lambda: window.model.rowCount() == 3002, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.view.indexAt(bottom).row() == 3001, timeout=WAIT_MS)


def test_a_microphone_that_appears_later_enables_push_to_talk(make_window, qtbot):
    window, _built = make_window(microphone=False)
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=WAIT_MS)
    assert not window.ptt.isEnabled()
    window.bridge.notice.emit("The microphone is back; you can speak again.", "microphone-back")
    qtbot.waitUntil(lambda: window.ptt.isEnabled(), timeout=WAIT_MS)
    assert "microphone is back" in window.banner.text


def test_an_announcement_is_shown_as_a_marked_assistant_message(make_window, qtbot):
    window, built = make_window()
    built.assistant.announce("Your tea timer is done.")
    qtbot.waitUntil(lambda: bool(rows(window)), timeout=WAIT_MS)
    assert rows(window) == [(ASSISTANT, "Your tea timer is done.")]
    index = window.model.index(0, 0)
    assert index.data(MessageRole.ANNOUNCEMENT) is True
    assert index.data(Qt.ItemDataRole.AccessibleTextRole) == (
        "Hearth (announcement): Your tea timer is done.")


def test_a_narrow_status_bar_elides_its_labels_whole_text_in_the_tooltip(make_window, qtbot):
    window, _ = make_window()
    window.resize(840, 640)
    window.show_session_info(SessionInfo(
        "llama-cpp (mmap)", "smollm2-135m-instruct-q4_1", "large (23.5 GiB)",
        "whisper, piper", why="engine: the largest model that fits"))
    window.metrics_label.setText("first audio 1391 ms · 38.2 tok/s")
    qtbot.waitUntil(lambda: window.statusBar().width() <= 840, timeout=WAIT_MS)
    QApplication.processEvents()
    labels = (window.engine_label, window.model_label, window.tier_label, window.speech_label)
    for label in labels:
        shown = label.shown_text()
        # whole, or cut at a letter boundary with an ellipsis: never clipped mid-glyph
        assert shown == label.text() or (shown.endswith("…") and
                                         label.text().startswith(shown[:-1])), shown
        assert label.toolTip().startswith(label.text())
        assert "the largest model that fits" in label.toolTip()
    assert any(label.shown_text() != label.text() for label in labels), \
        "840 px is too narrow for the whole stack: something must be elided"
