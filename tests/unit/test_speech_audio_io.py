"""WAV reading/writing, WavSource/WavSink, soxr resampling and format errors (no sound
card, no models)."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from speech.audio import AudioChunk
from speech.errors import AudioFormatError, SpeechBackendUnavailableError
from speech.resample import StreamResampler, resample
from speech.vad import Endpointer
from speech.wav import WavSink, WavSource, read_wav, write_wav


def tone(seconds: float, rate: int, hz: float = 440.0) -> AudioChunk:
    t = np.arange(int(seconds * rate)) / rate
    return AudioChunk.from_float(0.5 * np.sin(2 * np.pi * hz * t), rate)


def dominant_hz(chunk: AudioChunk) -> float:
    spectrum = np.abs(np.fft.rfft(chunk.to_float()))
    return float(np.argmax(spectrum) * chunk.sample_rate / chunk.frames)


def test_wav_round_trip(tmp_path: Path) -> None:
    audio = tone(0.5, 22050)
    back = read_wav(write_wav(tmp_path / "t.wav", audio))
    assert back.sample_rate == 22050 and back.channels == 1
    assert np.array_equal(back.samples, audio.samples)


def test_read_wav_rejects_other_sample_widths(tmp_path: Path) -> None:
    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    with pytest.raises(AudioFormatError) as info:
        read_wav(path)
    assert "8-bit" in str(info.value) and "\n" not in str(info.value)


def test_read_wav_rejects_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"hello, not audio")
    with pytest.raises(AudioFormatError, match="not a readable PCM WAV"):
        read_wav(path)
    with pytest.raises(AudioFormatError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_wav_source_wrong_rate_is_one_line_error(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "44k.wav", tone(0.2, 44100))
    with pytest.raises(AudioFormatError) as info:
        WavSource(path, resample=False)
    message = str(info.value)
    assert "44100 Hz" in message and "16000 Hz" in message and "\n" not in message


def test_wav_source_resamples_and_blocks(tmp_path: Path) -> None:
    stereo = np.stack([tone(1.0, 44100).samples] * 2, axis=1)
    path = write_wav(tmp_path / "stereo.wav", AudioChunk(stereo, 44100, 2))
    source = WavSource(path, block_ms=30)
    source.start()
    chunks = []
    while (chunk := source.read()) is not None:
        chunks.append(chunk)
    assert source.exhausted
    assert all(c.sample_rate == 16000 and c.channels == 1 for c in chunks)
    assert all(c.frames == 480 for c in chunks[:-1])
    joined = AudioChunk.concatenate(chunks)
    assert abs(joined.seconds - 1.0) < 0.01
    assert abs(dominant_hz(joined) - 440) < 5


def test_wav_source_keeps_the_file_s_own_length(tmp_path: Path) -> None:
    """`hearth transcribe --json` reports the file's length: 38400 samples at 22.05 kHz
    are 1.741 s, but 1.742 s once resampled to 16 kHz (27864 samples)."""
    path = write_wav(tmp_path / "said.wav", AudioChunk(np.zeros(38400, np.int16), 22050))
    source = WavSource(path, sample_rate=16000)
    assert round(source.file_seconds, 3) == round(read_wav(path).seconds, 3) == 1.741
    assert round(source.audio.seconds, 3) == 1.742


def test_resample_keeps_pitch_and_length() -> None:
    out = resample(tone(1.0, 22050, hz=1000), 16000)
    assert out.sample_rate == 16000 and out.frames == 16000
    assert abs(dominant_hz(out) - 1000) < 5


def test_stream_resampler_matches_one_shot_length() -> None:
    audio = tone(1.0, 48000)
    stream = StreamResampler(48000, 16000)
    blocks = [stream.process(audio.samples[i:i + 1440]) for i in range(0, audio.frames, 1440)]
    blocks.append(stream.process(np.zeros(0, dtype=np.int16), last=True))
    total = sum(len(b) for b in blocks)
    assert abs(total - 16000) <= 2


def test_wav_sink_collects_and_converts(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "out.wav")
    sink.play(tone(0.5, 22050))
    sink.play(tone(0.5, 16000))  # converted to the first chunk's rate
    cancelled = threading.Event()
    cancelled.set()
    sink.play(tone(0.5, 22050), cancelled)  # a cancelled chunk is not written
    sink.close()
    back = read_wav(tmp_path / "out.wav")
    assert back.sample_rate == 22050 and abs(back.seconds - 1.0) < 0.01


def test_chunk_expect_and_endpointer_reject_wrong_rate() -> None:
    with pytest.raises(AudioFormatError) as info:
        AudioChunk.silence(0.1, 44100).expect(16000, consumer="PocketSphinx")
    assert str(info.value).startswith("PocketSphinx needs 16000 Hz")
    with pytest.raises(AudioFormatError):
        Endpointer().process(AudioChunk.silence(0.1, 22050))
    with pytest.raises(AudioFormatError, match="22050"):
        Endpointer(sample_rate=22050)


def test_endpointer_ignores_silence_and_quiet_noise() -> None:
    rng = np.random.default_rng(0)
    quiet = AudioChunk.from_float(rng.normal(0, 0.001, 16000 * 2), 16000)
    endpointer = Endpointer()
    assert endpointer.process(AudioChunk.silence(1.0, 16000)) == []
    assert endpointer.process(quiet) == []  # below the energy gate
    assert not endpointer.in_speech


def test_missing_optional_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from speech import registry

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vosk" else real(name, *a))
    assert not registry.is_available("vosk")
    with pytest.raises(SpeechBackendUnavailableError) as info:
        registry.create_recognizer("vosk", "/models/vosk")
    assert "pip install 'hearth[vosk]'" in str(info.value)
    with pytest.raises(ValueError, match="unknown recognizer"):
        registry.create_recognizer("deepspeech", None)
