"""Barge-in by voice through a real echo canceller.

A private PulseAudio daemon runs `module-echo-cancel aec_method=webrtc` over the two null
sinks, and a loopback carries what is played to the speaker back into the microphone:
an echo path, as in a room. The assistant (`build_assistant`, real engine, Piper,
the recognizer, Silero, microWakeWord) finds the canceller by itself ([audio] echo_cancel =
'auto') and keeps listening while it speaks. With [audio] barge_in = 'speech' (the
default), a question or the wake word played into the microphone while Hearth speaks
stops the reply (nothing of it plays after the new turn starts) and starts a new turn;
replies heard back through the echo path alone never interrupt themselves (a burst of
Hearth's own voice leaking through the canceller may pause one, which then plays on).
How fast: bench/barge_in.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.assistant.barge_in import ECHO_SETTLE_SECONDS
from app.assistant.build import build_assistant
from app.config import Settings, replace, settings_from_dict
from app.events import (
    Event,
    FinalTranscript,
    ReplyFinished,
    SpeechFinished,
    SpeechStarted,
    State,
    StateChanged,
    TurnStarted,
)
from app.speech_setup import build_synthesizer
from speech.audio import AudioChunk
from speech.wav import write_wav
from tests.integration.pulse import PulseServer

EC_SOURCE, EC_SINK = "hearth_ec_source", "hearth_ec_sink"
STORY = "Tell me a long story about a dragon who lives in a castle by the sea."


def load_echo_canceller(server: PulseServer) -> None:
    """module-echo-cancel over the null sinks, and the speaker looped into the mic."""
    for module in (["module-echo-cancel", "aec_method=webrtc",
                    f"source_master={server.mic_sink}.monitor",
                    f"sink_master={server.speaker_sink}",
                    f"source_name={EC_SOURCE}", f"sink_name={EC_SINK}", "rate=16000",
                    "channels=1"],
                   ["module-loopback", f"source={server.speaker_sink}.monitor",
                    f"sink={server.mic_sink}", "latency_msec=30", "source_dont_move=true",
                    "sink_dont_move=true"]):
        subprocess.run(["pactl", "load-module", *module], env=server.env, check=True,
                       capture_output=True)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[PulseServer]:
    """Its own daemon (the modules would change the shared one); the environment and
    PortAudio are pointed back at nothing special afterwards."""
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH",
                                            "XDG_RUNTIME_DIR", "PULSE_SOURCE", "PULSE_SINK")}
    directory = Path(tempfile.mkdtemp(prefix="hearth-ec-"))
    server = PulseServer(directory)
    server.start()
    try:
        load_echo_canceller(server)
        server.activate()
        yield server
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def assistant(echo_server: PulseServer) -> Iterator[tuple[object, list[Event]]]:
    """`build_assistant` on the echo-cancelled devices with the default barge-in (by
    speech), no skills (timers another run left ringing in the data folder would talk
    over the replies)."""
    settings = settings_from_dict({
        "engine": {"temperature": 0.0, "max_tokens": 96},  # time to say it twice
        "audio": {"input_device": "pulse", "output_device": "pulse", "beeps": False},
        "history": {"enabled": False},
        "wake": {"enabled": True},
        "skills": {"enabled": False},
    })
    built, _ = build_assistant(replace(settings, "engine", threads=1), history=False)
    assert built.microphone is not None and built.microphone.echo_cancelled
    assert os.environ["PULSE_SOURCE"] == EC_SOURCE
    events: list[Event] = []
    built.subscribe(events.append)
    built.start()
    yield built, events
    built.shutdown()
    built.close()


def _wait(events: list[Event], since: int, test, timeout: float = 60.0) -> Event:  # type: ignore[no-untyped-def]
    """The first event from index `since` on that passes `test`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events[since:]:
            if test(event):
                return event
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s; events: {events[-15:]}")


def _speak_into_mic(server: PulseServer, tmp_path: Path, text: str) -> None:
    voice = build_synthesizer(Settings())
    audio = AudioChunk.concatenate(list(voice.synthesize(text, threading.Event())))
    voice.close()
    server.play_wav_to_mic(write_wav(tmp_path / "said.wav", audio))


def _reply_speaking(assistant, events: list[Event]) -> int:  # type: ignore[no-untyped-def]
    """Ask for a long reply; the turn id once its voice is playing."""
    before = len(events)
    assistant.submit_text(STORY)
    started = _wait(events, before, lambda e: isinstance(e, SpeechStarted))
    return started.turn_id


@pytest.mark.slow
def test_own_replies_through_the_echo_path_never_interrupt_themselves(
        assistant: tuple[object, list[Event]]) -> None:
    # the canceller leaks bursts of Hearth's voice now and then: at most they pause it
    # (one reply of 96 tokens, ~20 s: bench/barge_in.py runs 50)
    hearth, events = assistant
    before = len(events)
    hearth.submit_text(STORY)  # type: ignore[attr-defined]
    done = _wait(events, before, lambda e: isinstance(e, ReplyFinished), timeout=120)
    _wait(events, before, lambda e: isinstance(e, StateChanged) and e.state == State.IDLE,
          timeout=120)
    assert not done.interrupted
    assert not [e for e in events[before:] if isinstance(e, TurnStarted)
                and e.trigger in ("vad", "wake-word")]


@pytest.mark.slow
@pytest.mark.parametrize("said", ["What is the capital of France?", "Okay Nabu."])
def test_speech_or_the_wake_word_over_the_reply_stops_it_and_listens(
        assistant: tuple[object, list[Event]], echo_server: PulseServer, tmp_path: Path,
        said: str) -> None:
    hearth, events = assistant
    speaking = _reply_speaking(hearth, events)
    time.sleep(ECHO_SETTLE_SECONDS)  # speech barges in only after the canceller settled
    before = len(events)
    _speak_into_mic(echo_server, tmp_path, said)
    try:
        started = _wait(events, before, lambda e: isinstance(e, TurnStarted), timeout=8)
    except AssertionError:  # not heard over the reply: say it again, as a person would
        _speak_into_mic(echo_server, tmp_path, said)
        started = _wait(events, before, lambda e: isinstance(e, TurnStarted), timeout=20)
    # speech confirmed for 250 ms usually comes before the end of the wake word
    assert started.trigger in ("vad", "wake-word")
    after = echo_server.record_speaker(0.25)  # the reply stopped: nothing of it plays on
    answered = [e for e in events if isinstance(e, SpeechStarted)
                and e.turn_id == started.turn_id]
    if not answered:  # (a quick answer to the new question may already be playing)
        assert int(abs(after.samples.astype("int32")).max(initial=0)) < 300
    cut = [e for e in events if isinstance(e, SpeechFinished) and e.turn_id == speaking]
    assert cut and cut[0].interrupted
    assert events.index(cut[0]) < events.index(started)  # stopped before the new turn
    heard = _wait(events, before, lambda e: isinstance(e, FinalTranscript)
                  and e.turn_id == started.turn_id, timeout=30)
    if said.startswith("What"):
        assert heard.text  # the question said over the reply was recognized
    hearth.cancel()  # type: ignore[attr-defined]
