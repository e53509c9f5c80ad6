"""False wakes, the short version of bench/wake.py: half an hour of speech without the wake
word (the GPL-3 text read by espeak-ng, and the same in pink noise at 10 dB SNR, where the
detector lowers its cutoff) must not wake the default detector once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from speech.audio import AudioChunk
from speech.resample import resample
from speech.wake_micro import MicroWakeWordDetector
from speech.wav import read_wav

RATE = 16000
TEXT = Path("/usr/share/common-licenses/GPL-3")


def detections(audio: AudioChunk) -> int:
    detector = MicroWakeWordDetector("okay nabu")
    found = 0
    for i in range(0, audio.frames, RATE):
        found += detector.process(AudioChunk(audio.samples[i:i + RATE], RATE))
    detector.close()
    return found


def test_half_an_hour_of_speech_wakes_nothing(tmp_path: Path) -> None:
    wav = tmp_path / "gpl.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "175", "-f", str(TEXT), "-w", str(wav)],
                   check=True)
    speech = resample(read_wav(wav), RATE)
    assert speech.seconds > 1800
    assert detections(speech) == 0
    rng = np.random.default_rng(0)
    part = speech.samples[:RATE * 600].astype(np.float64)  # 10 minutes in noise
    spectrum = np.fft.rfft(rng.standard_normal(part.size))
    noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(np.arange(spectrum.size), 1)), part.size)
    noise *= np.sqrt(np.mean(part ** 2) / np.mean(noise ** 2)) / 10 ** (10 / 20)
    noisy = AudioChunk(np.clip(np.round(part + noise), -32768, 32767).astype(np.int16), RATE)
    assert detections(noisy) == 0
