"""The microphone disappearing mid-turn, on a private PulseAudio server.

The microphone is lost while the user is speaking (push-to-talk held): the PulseAudio
null sink that stands in for it is unloaded, or the whole sound server stops. The turn
must end with a clear microphone ErrorEvent, Hearth must keep answering (a typed
question works), and when the device is back Hearth must pick the microphone up by
itself so the next spoken turn works.

Real everything: PortAudio through the ALSA pulse plugin, PocketSphinx, llama.cpp with
the bundled SmolLM2, the pipeline's supervisor; replies are text-only to stay short.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.assistant.build import build_assistant
from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.events import ErrorEvent, Event, FinalTranscript, Notice, ReplyFinished
from tests.integration.pulse import MIC_SINK, SINK_RATE, PulseServer, pulse_server  # noqa: F401

MODEL = "smollm2-135m-instruct-q4_1"


class Events:
    """Every event of the assistant, with a way to wait for one."""

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.seen.append(event)
            self._changed.notify_all()

    def wait_for(self, match: Callable[[Event], bool], timeout: float, after: int = 0) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((e for e in self.seen[after:] if match(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event within {timeout} s; got "
                                         f"{[type(e).__name__ for e in self.seen[after:]]}")
                self._changed.wait(left)


def _pactl(server: PulseServer, *args: str) -> str:
    return subprocess.run(["pactl", *args], env=server.env, capture_output=True, text=True,
                          check=True, timeout=30).stdout


def _unload_mic(server: PulseServer) -> None:
    modules = _pactl(server, "list", "short", "modules").splitlines()
    module_id = next(line.split()[0] for line in modules if f"sink_name={MIC_SINK}" in line)
    _pactl(server, "unload-module", module_id)


def _load_mic(server: PulseServer) -> None:
    _pactl(server, "load-module", "module-null-sink", f"sink_name={MIC_SINK}",
           f"rate={SINK_RATE}", "channels=1")


@pytest.fixture
def assistant_and_events(
    pulse_server: PulseServer,  # noqa: F811
) -> Iterator[tuple[Assistant, Events]]:
    settings = replace(Settings(), "audio", input_device=pulse_server.device, beeps=False)
    settings = replace(settings, "stt", backend="pocketsphinx")
    settings = replace(settings, "engine", max_tokens=12, temperature=0.0)
    assistant, _ = build_assistant(settings, backend="llama-cpp", model=MODEL,
                                   voice_output=False, history=False)
    events = Events()
    assistant.subscribe(events)
    assistant.start()
    try:
        yield assistant, events
    finally:
        assistant.shutdown()
        # leave the session's server as other tests expect it
        try:
            sinks = _pactl(pulse_server, "list", "short", "sinks")
        except subprocess.CalledProcessError:  # a test stopped the server
            pulse_server.start()
            sinks = _pactl(pulse_server, "list", "short", "sinks")
        if MIC_SINK not in sinks:
            _load_mic(pulse_server)


@pytest.fixture
def question_wav(tmp_path: Path) -> Path:
    path = tmp_path / "question.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "what is the capital of france"],
                   check=True, timeout=60)
    return path


def _lose_mid_turn_then_back(assistant: Assistant, events: Events, server: PulseServer,
                             question_wav: Path, lose: Callable[[], None],
                             restore: Callable[[], None]) -> ErrorEvent:
    """Lose the device mid-turn, type a question, restore the device and speak again;
    the microphone's ErrorEvent."""
    assert assistant.voice_input
    time.sleep(1.0)  # the capture stream is running

    # 1. The device disappears while the user speaks.
    assistant.push_to_talk_pressed()
    player = server.play_wav_to_mic(question_wav, wait=False)
    time.sleep(0.8)
    lose()
    player.wait(30)
    error = events.wait_for(lambda e: isinstance(e, ErrorEvent) and "microphone" in e.code,
                            timeout=20)
    assert "microphone" in error.text.lower()
    assistant.push_to_talk_released()

    # 2. Hearth is still up: a typed question is answered.
    mark = len(events.seen)
    assistant.submit_text("What is two plus two?")
    reply = events.wait_for(lambda e: isinstance(e, ReplyFinished), timeout=180, after=mark)
    assert reply.text.strip()

    # 3. The device comes back and Hearth picks it up by itself.
    restore()
    deadline = time.monotonic() + 30
    while not assistant.voice_input and time.monotonic() < deadline:
        time.sleep(0.2)
    assert assistant.voice_input, "the microphone was not reopened after it came back"
    time.sleep(1.0)
    mark = len(events.seen)
    assistant.push_to_talk_pressed()
    time.sleep(0.3)
    server.play_wav_to_mic(question_wav, wait=True)
    time.sleep(0.5)
    assistant.push_to_talk_released()
    heard = events.wait_for(lambda e: isinstance(e, FinalTranscript), timeout=60, after=mark)
    assert heard.text.strip(), "nothing was heard from the returned microphone"
    events.wait_for(lambda e: isinstance(e, ReplyFinished), timeout=180, after=mark)
    return error


def test_microphone_lost_mid_turn_then_back(
    assistant_and_events: tuple[Assistant, Events],
    pulse_server: PulseServer,  # noqa: F811
    question_wav: Path,
) -> None:
    """The microphone's sink is unloaded: PulseAudio moves the capture to the fallback
    source and blocks keep flowing, so only asking the server (pactl) shows the loss."""
    assistant, events = assistant_and_events
    error = _lose_mid_turn_then_back(assistant, events, pulse_server, question_wav,
                                     lambda: _unload_mic(pulse_server),
                                     lambda: _load_mic(pulse_server))
    assert "disappeared" in error.text
    assert any(isinstance(e, Notice) and e.code == "microphone-back" for e in events.seen)


def test_sound_server_lost_mid_turn_then_back(
    assistant_and_events: tuple[Assistant, Events],
    pulse_server: PulseServer,  # noqa: F811
    question_wav: Path,
) -> None:
    """The whole sound server goes away (PortAudio ends the stream) and comes back."""
    assistant, events = assistant_and_events
    _lose_mid_turn_then_back(assistant, events, pulse_server, question_wav,
                             pulse_server.stop, pulse_server.start)
    assert any(isinstance(e, Notice) and e.code == "microphone-back" for e in events.seen)
