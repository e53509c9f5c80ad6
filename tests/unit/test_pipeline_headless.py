"""Headless mode with fake stages: a GPIO button (gpiozero mock pins) drives a full turn
and the status LED follows the state; the keyboard toggle; typed lines without a
microphone; no Qt import; `hearth history` output."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from app.assistant.pipeline import Assistant
from app.config import Settings
from app.events import FinalTranscript, State, StateChanged, TurnMetrics
from app.headless import HeadlessRunner, KeyboardPushToTalk, key_char
from app.history import History, TurnRecord
from tests.fakes import (
    EventLog,
    FakeEngine,
    FakeMicrophone,
    FakeRecognizer,
    Stages,
    build_assistant,
    fake_settings,
)

ROOT = Path(__file__).resolve().parents[2]
BUTTON, LED = 17, 27


pytestmark = pytest.mark.usefixtures("restore_logging")  # main() adds log handlers


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


def make_assistant(settings: Settings, mic: FakeMicrophone | None,
                   history: History | None = None) -> Assistant:
    return build_assistant(Stages(engine=FakeEngine(["It is noon."]),
                                  recognizer=FakeRecognizer(["what time is it"]),
                                  microphone=mic, history=history), settings)


def wait_until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never became true")
        time.sleep(0.01)


def test_gpio_button_drives_a_full_turn_and_the_led_follows(mock_pins: MockFactory,
                                                            tmp_path: Path) -> None:
    settings = fake_settings(gpio={"button_pin": BUTTON, "led_pin": LED, "pull_up": True})
    mic = FakeMicrophone()
    history = History(tmp_path / "h.sqlite3")
    assistant = make_assistant(settings, mic, history=history)
    log = EventLog()
    assistant.subscribe(log)
    runner = HeadlessRunner(settings, assistant, input_stream=io.StringIO(), output=io.StringIO())
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        button = mock_pins.pin(BUTTON)
        led = mock_pins.pin(LED)
        wait_until(lambda: runner.gpio is not None)
        assert button.state == 1 and led.state == 0  # pulled up, not pressed; LED off
        button.drive_low()  # pressed: the button shorts the pin to ground
        wait_until(lambda: assistant.state == State.LISTENING)
        wait_until(lambda: led.state == 1)
        mic.say(0.2)
        time.sleep(0.3)
        button.drive_high()
        log.wait_count(TurnMetrics)
        wait_until(lambda: assistant.state == State.IDLE)
        wait_until(lambda: led.state == 0)
    finally:
        runner.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert [e.text for e in log.of(FinalTranscript)] == ["what time is it"]
    seen = [e.state for e in log.of(StateChanged)]
    assert seen == [State.LISTENING, State.THINKING, State.SPEAKING, State.IDLE]
    turns = History(tmp_path / "h.sqlite3").recent()
    assert [(t["user_text"], t["reply"], t["complete"]) for t in turns] == [
        ("what time is it", "It is noon.", True)]


def test_keyboard_key_toggles_push_to_talk() -> None:
    events: list[str] = []

    class Recorder:
        def push_to_talk_pressed(self) -> None:
            events.append("pressed")

        def push_to_talk_released(self) -> None:
            events.append("released")

    quit_called = threading.Event()
    master, slave = os.openpty()
    keyboard = KeyboardPushToTalk(Recorder(), slave, " ", on_quit=quit_called.set)  # type: ignore[arg-type]
    try:
        os.write(master, b" ")
        wait_until(lambda: events == ["pressed"])
        os.write(master, b"x ")
        wait_until(lambda: events == ["pressed", "released"])
        os.write(master, b"q")
        assert quit_called.wait(2)
    finally:
        keyboard.close()
        os.close(master)
        os.close(slave)


def test_key_names() -> None:
    assert key_char("space") == " "
    assert key_char("K") == "k"
    with pytest.raises(ValueError, match="push_to_talk_key"):
        key_char("ctrl+x")


def test_without_a_microphone_typed_lines_are_questions() -> None:
    settings = fake_settings()
    assistant = make_assistant(settings, None)
    log = EventLog()
    assistant.subscribe(log)
    output = io.StringIO()
    runner = HeadlessRunner(settings, assistant, input_stream=io.StringIO("what time is it\n"),
                            output=output)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        log.wait_count(TurnMetrics)
    finally:
        runner.stop()
        thread.join(10)
    assert "you: what time is it\nhearth: It is noon.\n" in output.getvalue()


def test_headless_never_imports_qt() -> None:
    code = ("import sys, app.headless, app.cli.headless_cmd, app.gpio, app.file_mode; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_history_cli_list_show_export_clear(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    db = tmp_path / "h.sqlite3"
    with History(db) as history:
        history.finish_turn(history.start_turn(user_text="hi there"), TurnRecord(reply="Hello!"))
        history.start_turn(user_text="cut off")
    config = tmp_path / "c.toml"
    config.write_text(f'[history]\npath = "{db}"\n')
    assert main(["--config", str(config), "history", "list"]) == 0
    listing = capsys.readouterr().out
    assert "hi there" in listing and "Hello!" in listing and "(unfinished)" in listing
    assert main(["--config", str(config), "history", "show", "1"]) == 0
    assert "reply: Hello!" in capsys.readouterr().out
    assert main(["--config", str(config), "history", "export", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["--config", str(config), "history", "show", "9"]) == 1
    assert main(["--config", str(config), "history", "clear", "--yes"]) == 0
    assert "Deleted 2 turns" in capsys.readouterr().out


def test_an_announcement_is_written_to_the_console() -> None:
    settings = fake_settings()
    assistant = make_assistant(settings, None)
    output = io.StringIO()
    runner = HeadlessRunner(settings, assistant, input_stream=io.StringIO(""), output=output)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        wait_until(lambda: bool(output.getvalue()))  # it says how to talk: running
        assistant.announce("Your tea timer is done.")
        wait_until(lambda: "timer" in output.getvalue())
    finally:
        runner.stop()
        thread.join(10)
    assert "hearth (announcement): Your tea timer is done.\n" in output.getvalue()
