"""The microphone's stall watchdog and finished callback, with a stand-in for PortAudio
(no sound card): a stream that stops delivering blocks, or ends by itself, makes
`Microphone.read` raise `AudioDeviceError` naming the device; a closed gate does not."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import speech.devices
from speech.devices import Microphone
from speech.errors import AudioDeviceError

RATE = 16000
BLOCK = RATE * 30 // 1000


class FakeInputStream:
    """Records the callbacks PortAudio would call; the test delivers the blocks."""

    def __init__(self, *, callback: Any, finished_callback: Any, **kwargs: Any) -> None:
        self.callback = callback
        self.finished_callback = finished_callback

    def deliver(self) -> None:
        self.callback(np.zeros((BLOCK, 1), dtype=np.int16), BLOCK, None, None)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[FakeInputStream]:
    """Every stream opened; PortAudio replaced by one input device "Fake USB Mic"."""
    opened: list[FakeInputStream] = []

    def input_stream(**kwargs: Any) -> FakeInputStream:
        opened.append(FakeInputStream(**kwargs))
        return opened[-1]

    fake = SimpleNamespace(
        query_devices=lambda: [{"name": "Fake USB Mic", "hostapi": 0, "max_input_channels": 1,
                                "max_output_channels": 0, "default_samplerate": RATE}],
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=SimpleNamespace(device=(0, -1)),
        InputStream=input_stream,
        PortAudioError=OSError,
        CallbackAbort=RuntimeError,
    )
    monkeypatch.setattr(speech.devices, "_sounddevice", lambda: fake)
    return opened


def test_a_stream_that_stops_delivering_raises_naming_the_device(
    streams: list[FakeInputStream],
) -> None:
    mic = Microphone("usb", stall_seconds=0.2)
    mic.start()
    streams[0].deliver()
    assert mic.read(timeout=1.0) is not None
    with pytest.raises(AudioDeviceError, match=r"Fake USB Mic.*no audio"):
        mic.read(timeout=30.0)
    mic.stop()


def test_a_closed_gate_is_not_a_stall(streams: list[FakeInputStream]) -> None:
    mic = Microphone("usb", stall_seconds=0.2)
    mic.start()
    mic.set_gate(True)
    done = threading.Event()

    def keep_delivering() -> None:
        while not done.wait(0.02):
            streams[0].deliver()

    feeder = threading.Thread(target=keep_delivering)
    feeder.start()
    try:
        assert mic.read(timeout=0.8) is None  # blocks arrive but are dropped: no error
    finally:
        done.set()
        feeder.join()
    mic.stop()


def test_a_stream_that_ends_by_itself_raises(streams: list[FakeInputStream]) -> None:
    mic = Microphone("usb")
    mic.start()
    streams[0].finished_callback()
    with pytest.raises(AudioDeviceError, match=r"Fake USB Mic.*stopped unexpectedly"):
        mic.read(timeout=1.0)


def test_stopping_is_not_a_failure(streams: list[FakeInputStream]) -> None:
    mic = Microphone("usb", stall_seconds=0.1)
    mic.start()
    mic.stop()
    streams[0].finished_callback()
    assert mic.read(timeout=0.3) is None


def test_a_device_reported_gone_raises_while_blocks_still_flow(
    streams: list[FakeInputStream], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PulseAudio moves a capture whose source vanished: blocks keep coming, only the
    presence check tells."""
    monkeypatch.setattr(speech.devices, "_PRESENCE_CHECK_SECONDS", 0.0)
    present = [True]
    asked: list[str] = []

    def device_present() -> bool:
        asked.append(threading.current_thread().name)
        return present[0]

    mic = Microphone("usb", device_present=device_present)
    mic.start()
    streams[0].deliver()
    assert asked == []  # neither start() nor the PortAudio callback runs the check
    assert mic.read(timeout=1.0) is not None
    assert asked and set(asked) == {threading.current_thread().name}  # the reading thread
    present[0] = False
    streams[0].deliver()
    with pytest.raises(AudioDeviceError, match=r"Fake USB Mic.*disappeared"):
        mic.read(timeout=1.0)
    mic.stop()


def test_the_presence_check_is_rate_limited_and_idle_when_stopped(
    streams: list[FakeInputStream], monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []

    def device_present() -> bool:
        calls.append(1.0)
        return True

    monkeypatch.setattr(speech.devices, "_PRESENCE_CHECK_SECONDS", 3600.0)
    mic = Microphone("usb", device_present=device_present)
    mic.start()
    for _ in range(20):  # many reads within one interval: no check yet
        streams[0].deliver()
        assert mic.read(timeout=1.0) is not None
    assert calls == []
    mic.stop()
    monkeypatch.setattr(speech.devices, "_PRESENCE_CHECK_SECONDS", 0.0)
    assert mic.read(timeout=0.1) is None  # stopped: nothing to check
    assert calls == []
