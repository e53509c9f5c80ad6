"""Barge-in by speech on scripted audio. BargeInDetector (speech/doubletalk.py) pauses
at the first sign of speech, cancels only when speech goes on while the speaker is
silent, and lets a reply play on after an echo burst, including while Silero's recurrent
state still calls the silence after it speech; BargeInBySpeech (app/assistant/barge_in.py)
pauses and resumes the speaker accordingly."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.assistant.barge_in import BargeInBySpeech
from app.assistant.ears import Ears
from app.assistant.turn import Trigger, Turn, Voice
from speech.audio import AudioChunk
from speech.doubletalk import BargeInDetector, BargeInKind
from speech.vad import Endpointer
from tests.fakes import fake_settings

WINDOW = 512
"""Silero's window: 32 ms at 16 kHz."""


class ScriptedClassifier:
    """Calls a window speech when it is not silent, and for `hangover` windows after, as
    Silero does."""

    sample_rate = 16000
    frame_samples = WINDOW
    frame_ms = 32.0

    def __init__(self, hangover: int = 0) -> None:
        self.hangover = hangover
        self._since_sound = hangover + 1

    def is_speech(self, frame: np.ndarray) -> bool:
        self._since_sound = 0 if np.any(frame) else self._since_sound + 1
        return self._since_sound <= self.hangover


def _windows(*runs: tuple[int, int]) -> AudioChunk:
    """Concatenated runs of (windows, amplitude): a tone at that amplitude, 0 = silence."""
    rng = np.random.default_rng(0)
    parts = [(rng.standard_normal(n * WINDOW) * amplitude).astype(np.int16)
             for n, amplitude in runs]
    return AudioChunk(np.concatenate(parts), 16000)


def _kinds(detector: BargeInDetector, audio: AudioChunk) -> list[BargeInKind]:
    events = []
    for start in range(0, audio.frames, 480):  # 30 ms microphone blocks
        events += detector.process(AudioChunk(audio.samples[start:start + 480], 16000))
    return [e.kind for e in events]


def test_speech_that_goes_on_while_paused_barges_in_with_its_start() -> None:
    detector = BargeInDetector(ScriptedClassifier(), pre_roll_ms=96)
    audio = _windows((20, 0), (25, 2000), (10, 0))
    events: list = []  # type: ignore[type-arg]
    for start in range(0, audio.frames, 480):
        events += detector.process(AudioChunk(audio.samples[start:start + 480], 16000))
    assert [e.kind for e in events] == [BargeInKind.ONSET, BargeInKind.CONFIRMED]
    confirmed = events[1]
    assert confirmed.audio is not None and confirmed.speech_seconds >= 0.25
    # the pre-roll and the onset are in the audio handed on for recognition
    assert confirmed.audio.frames >= (3 + 2) * WINDOW
    assert not np.any(confirmed.audio.samples[:WINDOW])


def test_an_echo_burst_that_stops_with_the_speaker_only_pauses_the_reply() -> None:
    # leaked echo: what was on its way when the onset paused the speaker still arrives
    # (up to the drain), then nothing
    kinds = _kinds(BargeInDetector(ScriptedClassifier()), _windows((10, 0), (6, 2000),
                                                                   (30, 0)))
    assert kinds == [BargeInKind.ONSET, BargeInKind.RELEASED]


def test_silence_that_the_vad_still_calls_speech_does_not_confirm() -> None:
    # Silero keeps saying "speech" ~5 windows into digital silence: not loud, not counted
    kinds = _kinds(BargeInDetector(ScriptedClassifier(hangover=6)),
                   _windows((10, 0), (6, 2000), (30, 0)))
    assert kinds == [BargeInKind.ONSET, BargeInKind.RELEASED]


def test_quiet_leaks_below_the_loudness_floor_do_not_even_pause() -> None:
    kinds = _kinds(BargeInDetector(ScriptedClassifier(), min_rms=60.0),
                   _windows((10, 0), (40, 30), (10, 0)))
    assert kinds == []


def test_after_a_released_leak_only_speech_louder_than_it_pauses() -> None:
    # the canceller leaks in bursts: a second burst as loud as the first is ignored for
    # leak_memory_ms, a person talking well above it is not
    detector = BargeInDetector(ScriptedClassifier(), leak_memory_ms=2000, leak_ratio=1.5)
    leak = _windows((10, 0), (6, 2000), (20, 0))
    assert _kinds(detector, leak) == [BargeInKind.ONSET, BargeInKind.RELEASED]
    assert _kinds(detector, _windows((6, 2000), (10, 0))) == []
    louder = _kinds(detector, _windows((30, 4000)))
    assert louder == [BargeInKind.ONSET, BargeInKind.CONFIRMED]


def test_the_memory_of_a_leak_fades() -> None:
    detector = BargeInDetector(ScriptedClassifier(), leak_memory_ms=1000)
    assert _kinds(detector, _windows((10, 0), (6, 2000), (20, 0))) == [
        BargeInKind.ONSET, BargeInKind.RELEASED]
    # 20 windows (0.64 s) of the 1 s already passed in the release above
    assert _kinds(detector, _windows((15, 0), (6, 2000), (20, 0))) == [
        BargeInKind.ONSET, BargeInKind.RELEASED]


def test_after_a_barge_in_it_stays_quiet_until_reset() -> None:
    detector = BargeInDetector(ScriptedClassifier())
    speech = _windows((10, 0), (30, 2000))
    assert _kinds(detector, speech) == [BargeInKind.ONSET, BargeInKind.CONFIRMED]
    assert _kinds(detector, speech) == []
    detector.reset()
    assert _kinds(detector, speech)[0] is BargeInKind.ONSET


class PausableSpeaker:
    """Records what barge-in asks of the speaker, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def play(self, chunk: AudioChunk, cancel: object = None) -> None:
        self.calls.append("play")

    def stop(self) -> None:
        self.calls.append("stop")

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def _barge_in(monkeypatch: pytest.MonkeyPatch) -> tuple[BargeInBySpeech, PausableSpeaker, Turn]:
    monkeypatch.setattr("app.assistant.barge_in.ECHO_SETTLE_SECONDS", 0.0)
    settings = fake_settings(audio={"barge_in": "speech"})
    speaker = PausableSpeaker()
    ears = Ears(lambda rate: Endpointer(rate),
                lambda rate: BargeInDetector(ScriptedClassifier()))
    reply = Turn(1, Trigger.TEXT, voice=Voice.SPEAKING)
    return BargeInBySpeech(settings, ears, lambda: 16000, lambda: speaker), speaker, reply


def _hear(barge_in: BargeInBySpeech, reply: Turn, audio: AudioChunk) -> list[AudioChunk]:
    heard = []
    for start in range(0, audio.frames, 480):
        speech = barge_in.hear(AudioChunk(audio.samples[start:start + 480], 16000), reply,
                               echo_cancelled=True)
        if speech is not None:
            heard.append(speech)
    return heard


def test_speech_over_the_reply_pauses_it_at_once_and_is_handed_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    barge_in, speaker, reply = _barge_in(monkeypatch)
    heard = _hear(barge_in, reply, _windows((10, 0), (30, 2000)))
    # paused at the onset, never resumed: the listen stage's new turn stops the speaker
    assert speaker.calls == ["pause"]
    assert len(heard) == 1 and heard[0].seconds >= 0.25


def test_an_echo_burst_pauses_the_reply_then_it_plays_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    barge_in, speaker, reply = _barge_in(monkeypatch)
    assert _hear(barge_in, reply, _windows((10, 0), (6, 2000), (30, 0))) == []
    assert speaker.calls == ["pause", "resume"]
    assert barge_in.pauses == 1


def test_without_an_echo_canceller_speech_never_pauses_the_reply(
        monkeypatch: pytest.MonkeyPatch) -> None:
    barge_in, speaker, reply = _barge_in(monkeypatch)
    audio = _windows((10, 0), (30, 2000))
    assert barge_in.hear(audio, reply, echo_cancelled=False) is None
    assert speaker.calls == []


def test_a_pause_nothing_ends_is_lifted(monkeypatch: pytest.MonkeyPatch) -> None:
    # the microphone stops right after the onset: the reply must not stay paused
    monkeypatch.setattr("app.assistant.barge_in.PAUSE_LIMIT_SECONDS", 0.05)
    barge_in, speaker, reply = _barge_in(monkeypatch)
    _hear(barge_in, reply, _windows((10, 0), (3, 2000)))
    assert speaker.calls == ["pause"]
    deadline = time.monotonic() + 5
    while speaker.calls == ["pause"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert speaker.calls == ["pause", "resume"]


def test_speech_just_after_a_released_leak_still_barges_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a leak paused and resumed the reply; the person who then talks over it is heard
    # (a released leak no longer blinds barge-in for as long as a reply's start does)
    barge_in, speaker, reply = _barge_in(monkeypatch)
    monkeypatch.setattr("app.assistant.barge_in.ECHO_SETTLE_SECONDS", 0.2)
    _hear(barge_in, reply, _windows((10, 0)))
    time.sleep(0.3)  # past the reply's first ECHO_SETTLE_SECONDS
    heard = _hear(barge_in, reply, _windows((10, 0), (6, 1500), (20, 0), (30, 6000)))
    assert speaker.calls == ["pause", "resume", "pause"]
    assert len(heard) == 1 and heard[0].seconds >= 0.25


def test_the_time_limit_of_an_earlier_pause_does_not_lift_a_later_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.assistant.barge_in.PAUSE_LIMIT_SECONDS", 0.5)
    barge_in, speaker, reply = _barge_in(monkeypatch)
    _hear(barge_in, reply, _windows((10, 0), (6, 2000), (20, 0)))  # paused, resumed
    assert speaker.calls == ["pause", "resume"]
    time.sleep(0.3)
    _hear(barge_in, reply, _windows((3, 8000)))  # a second pause, undecided
    time.sleep(0.35)  # the first pause's limit has passed, not the second's
    assert speaker.calls == ["pause", "resume", "pause"]
    deadline = time.monotonic() + 5
    while len(speaker.calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert speaker.calls == ["pause", "resume", "pause", "resume"]
