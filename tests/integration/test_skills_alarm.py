"""A timer set by voice through the live pipeline rings in the speaker: a private PulseAudio
(tests/integration/pulse.py), the bundled stack (PocketSphinx, SmolLM2 on llama.cpp,
Piper). The request is spoken into the microphone sink; the speaker sink is recorded:
the alarm's beeps and the spoken message are in it when the timer ends, again after
`ring_every_seconds`, and no more once push-to-talk silenced it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.events import Announcement, IntentMatched, TurnMetrics
from app.skills.intents import IntentMatcher
from app.skills.skillset import SkillSet
from app.skills.timers import TimerStore
from app.skills.volume import VolumeControl
from engine.base import ChatEngine, EngineConfig
from engine.registry import create_engine
from speech.audio import AudioChunk
from speech.devices import Microphone, Speaker
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.sphinx import PocketSphinxRecognizer
from speech.wav import write_wav
from tests.fakes import EventLog
from tests.integration.pulse import SINK_RATE, PulseServer, pulse_server  # noqa: F401
from tests.integration.spoken_answer import recognize_back

pytestmark = pytest.mark.slow

BEEP_HZ = (988.0, 1319.0)
"""The alarm sound's two notes (app.skills.timers.alarm_sound)."""


def beep_frames(audio: AudioChunk, frame_seconds: float = 0.1) -> int:
    """How many frames of `audio` are dominated by one of the alarm's notes."""
    samples = audio.to_float()
    size = round(frame_seconds * audio.sample_rate)
    count = 0
    for start in range(0, len(samples) - size, size):
        frame = samples[start:start + size]
        if np.sqrt(np.mean(frame ** 2)) < 0.01:
            continue
        spectrum = np.abs(np.fft.rfft(frame * np.hanning(size)))
        peak = np.fft.rfftfreq(size, 1 / audio.sample_rate)[int(np.argmax(spectrum))]
        count += any(abs(peak - hz) < 25 for hz in BEEP_HZ)
    return count


@pytest.fixture(scope="module")
def llama(smollm2_gguf: Path) -> Iterator[ChatEngine]:
    engine = create_engine("llama-cpp", EngineConfig(model_path=smollm2_gguf,
                                                     context_length=2048, threads=1))
    yield engine
    engine.close()


def test_a_spoken_timer_rings_in_the_speaker_until_push_to_talk(
    pulse_server: PulseServer, llama: ChatEngine, piper_voice_onnx: Path,  # noqa: F811
    pocketsphinx_en_dir: Path, tmp_path: Path,
) -> None:
    piper = PiperSynthesizer(piper_voice_onnx, deterministic=True)
    speech = AudioChunk.concatenate(list(piper.synthesize("Set a timer for three seconds.")))
    wav = write_wav(tmp_path / "request.wav", AudioChunk.concatenate([
        AudioChunk.silence(0.3, speech.sample_rate), speech,
        AudioChunk.silence(0.4, speech.sample_rate)]))
    settings: Settings = replace(replace(Settings(), "audio", beeps=False), "history",
                                 enabled=False)
    skills = SkillSet(IntentMatcher(), TimerStore(tmp_path / "timers.sqlite3"),
                      ring_every_seconds=8.0)
    assistant = Assistant(settings, engine=llama,
                          recognizer=PocketSphinxRecognizer(pocketsphinx_en_dir),
                          synthesizer=piper, microphone=Microphone(pulse_server.device),
                          speaker=Speaker(pulse_server.device), skills=skills)
    skills.attach(assistant)
    log = EventLog()
    assistant.subscribe(log)
    assistant.start()
    try:
        with pulse_server.recording_speaker(SINK_RATE) as recorded:
            assistant.push_to_talk_pressed()
            time.sleep(0.3)
            pulse_server.play_wav_to_mic(wav)
            time.sleep(0.2)
            assistant.push_to_talk_released()
            log.wait_count(TurnMetrics, 1, timeout=90)
            matched = [e for e in log.events if isinstance(e, IntentMatched)]
            assert [(e.intent, e.slots.get("duration_seconds")) for e in matched] == [
                ("HassStartTimer", "3")], log.events
            log.wait_count(Announcement, 2, timeout=30)  # rang, and rang again
            time.sleep(4)  # the second announcement is spoken
        assistant.push_to_talk_pressed()  # silences the ringing timer (before it rings again)
        assistant.push_to_talk_released()
        with pulse_server.recording_speaker(SINK_RATE) as after:
            time.sleep(8)
        ringing = resample(recorded[0], 16000)
        assert beep_frames(ringing) >= 6, "the alarm sound is not in the speaker"
        heard = recognize_back(pocketsphinx_en_dir, ringing)
        assert "timer" in heard and "done" in heard, heard
        assert beep_frames(resample(after[0], 16000)) == 0, "it rang after being silenced"
        assert len(log.of(Announcement)) == 2
        assert skills.store is not None and skills.store.active() == []
    finally:
        assistant.shutdown(timeout=30)
        skills.close()


def test_volume_requests_change_the_speaker_volume(pulse_server: PulseServer,  # noqa: F811
                                                   tmp_path: Path) -> None:
    skills = SkillSet(IntentMatcher(), TimerStore(tmp_path / "t.sqlite3"))
    assert skills.answer("set the volume to 50 percent").text == (  # type: ignore[union-attr]
        "Okay, the volume is at 50 percent.")
    assert VolumeControl().level() == 50
    louder = skills.answer("louder")
    assert louder is not None and louder.slots["volume_level"] == "60"
    assert skills.answer("音量调到三十").text == "好的，音量调到百分之30。"  # type: ignore[union-attr]
    assert VolumeControl().level() == 30
