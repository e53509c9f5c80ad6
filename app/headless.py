"""The voice loop without a screen: `hearth headless` (a kiosk, a systemd service, a
terminal). Never imports Qt.

Turns start from a GPIO push-to-talk button, a keyboard key in a terminal (press
once to talk, again to finish: terminals report no key releases), the wake word, or
voice activity in hands-free mode. Without a microphone, lines typed on stdin are
the questions. The conversation is written to `output` (the terminal) as it happens.

SIGTERM and SIGINT end the loop gracefully: the sentence being spoken finishes, the
turn is saved to history (marked interrupted) and `run()` returns 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import threading
from types import FrameType
from typing import IO, Any

from app.assistant.pipeline import Assistant
from app.config import Settings
from app.events import (
    Announcement,
    ErrorEvent,
    Event,
    FinalTranscript,
    Notice,
    ReplyFinished,
    ReplyToken,
    State,
    StateChanged,
)

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 8.0
"""How long SIGTERM waits for the current sentence to finish before cutting it."""

_KEYS = {"space": " ", "enter": "\n", "return": "\n", "tab": "\t"}


def key_char(name: str) -> str:
    """The character a `push_to_talk_key` setting names ("space", "enter", or one letter)."""
    name = name.strip().lower()
    if name in _KEYS:
        return _KEYS[name]
    if len(name) == 1:
        return name
    raise ValueError(f"push_to_talk_key {name!r}: use 'space', 'enter', 'tab' or one character")


class KeyboardPushToTalk:
    """Push-to-talk from a terminal key, as a toggle; `quit_key` asks the loop to stop.

    Reads the terminal in cbreak mode (keys arrive one by one, unechoed) on its own
    thread and restores the terminal settings on `close()`.
    """

    def __init__(self, assistant: Assistant, fd: int, key: str = " ",
                 quit_key: str = "q", on_quit: Any = None) -> None:
        self.assistant = assistant
        self.fd = fd
        self.key = key
        self.quit_key = quit_key
        self.on_quit = on_quit
        self.talking = False
        self._stop = threading.Event()
        self._saved: Any = None
        if os.isatty(fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        self._thread = threading.Thread(target=self._loop, name="hearth-keyboard", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self.fd, 1)
            if not data:
                return  # end of input
            self.handle(data.decode(errors="ignore"))

    def handle(self, char: str) -> None:
        """React to one key."""
        if char == self.key:
            self.talking = not self.talking
            if self.talking:
                self.assistant.push_to_talk_pressed()
            else:
                self.assistant.push_to_talk_released()
        elif char.lower() == self.quit_key and self.on_quit is not None:
            self.on_quit()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


class LineInput:
    """Typed questions, one per line (when there is no microphone). EOF just ends input."""

    def __init__(self, assistant: Assistant, stream: IO[str]) -> None:
        self.assistant = assistant
        self.stream = stream
        self._thread = threading.Thread(target=self._loop, name="hearth-lines", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        for line in self.stream:
            if line.strip():
                self.assistant.submit_text(line)


class ConsoleView:
    """Writes the conversation to a text stream as events arrive."""

    def __init__(self, output: IO[str]) -> None:
        self.output = output
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            text = self._render(event)
            if text:
                self.output.write(text)
                self.output.flush()

    def _render(self, event: Event) -> str:
        if isinstance(event, FinalTranscript) and event.text:
            return f"you: {event.text}\nhearth: "
        if isinstance(event, ReplyToken):
            return event.text
        if isinstance(event, ReplyFinished):
            return " [interrupted]\n" if event.interrupted else "\n"
        if isinstance(event, StateChanged) and event.state == State.LISTENING:
            return "(listening)\n"
        if isinstance(event, ErrorEvent | Notice):
            return f"({event.text})\n"
        if isinstance(event, Announcement):
            return f"hearth (announcement): {event.text}\n"
        return ""


class HeadlessRunner:
    """Runs an `Assistant` with its input devices until stopped (signal, quit key, `stop`)."""

    def __init__(self, settings: Settings, assistant: Assistant, *,
                 input_stream: IO[str] | None = None, output: IO[str] | None = None,
                 gpio_pin_factory: Any = None) -> None:
        self.settings = settings
        self.assistant = assistant
        self.input_stream = input_stream if input_stream is not None else sys.stdin
        self.output = output
        self.gpio_pin_factory = gpio_pin_factory
        self.stop_event = threading.Event()
        self.gpio: Any = None
        self.keyboard: KeyboardPushToTalk | None = None

    def stop(self) -> None:
        """Ask the loop to end (thread-safe; also what SIGTERM does)."""
        self.stop_event.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current sentence and stopping",
                 signal.Signals(signum).name)
        self.stop()

    def run(self) -> int:
        """The loop; returns the exit code (0 after a graceful stop)."""
        previous = self._install_signal_handlers()
        if self.output is not None:
            self.assistant.subscribe(ConsoleView(self.output))
        try:
            self.assistant.start()
            self._open_inputs()
            self._say_how_to_talk()
            while not self.stop_event.wait(0.2):
                pass
        finally:
            self.assistant.shutdown(timeout=SHUTDOWN_SECONDS)
            self._close_inputs()
            if self.assistant.history is not None:
                self.assistant.history.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may set handlers (tests run us elsewhere)
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _open_inputs(self) -> None:
        gpio = self.settings.gpio
        if gpio.button_pin >= 0 or gpio.led_pin >= 0:
            from app.gpio import GpioControls

            self.gpio = GpioControls(gpio, self.assistant, pin_factory=self.gpio_pin_factory)
        fd = _fileno(self.input_stream)
        if self.assistant.voice_input:
            if fd is not None and os.isatty(fd) and \
                    self.settings.assistant.trigger == "push-to-talk":
                self.keyboard = KeyboardPushToTalk(
                    self.assistant, fd, key_char(self.settings.assistant.push_to_talk_key),
                    on_quit=self.stop)
        else:
            LineInput(self.assistant, self.input_stream)

    def _say_how_to_talk(self) -> None:
        ways = []
        if self.gpio is not None and self.gpio.button is not None:
            ways.append(f"hold the button on GPIO{self.settings.gpio.button_pin}")
        if self.keyboard is not None:
            key = self.settings.assistant.push_to_talk_key
            ways.append(f"press {key} to talk and {key} again when done (q quits)")
        if self.assistant.wake is not None:
            ways.append(f"say {self.settings.wake.phrase!r}")
        if self.assistant.voice_input and self.settings.assistant.trigger == "hands-free":
            ways.append("just speak")
        if not self.assistant.voice_input:
            ways.append("type a question and press Enter")
        log.info("Hearth is ready: %s", "; or ".join(ways) or "no way to start a turn")

    def _close_inputs(self) -> None:
        if self.keyboard is not None:
            self.keyboard.close()
        if self.gpio is not None:
            self.gpio.close()


def _fileno(stream: IO[str]) -> int | None:
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return stream.fileno()
    return None
