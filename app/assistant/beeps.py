"""Short start/stop tones, generated (no sound files to ship or lose)."""

from __future__ import annotations

import numpy as np

from speech.audio import AudioChunk

START_HZ = (660.0, 880.0)
"""Rising two-note chirp: "I'm listening"."""
STOP_HZ = (880.0, 660.0)
"""Falling chirp: "got it"."""


def tone(frequencies_hz: tuple[float, ...], sample_rate: int, note_seconds: float = 0.06,
         volume: float = 0.25) -> AudioChunk:
    """Notes played one after another, each with a 5 ms fade so they do not click."""
    frames = max(1, round(note_seconds * sample_rate))
    t = np.arange(frames) / sample_rate
    fade = min(frames // 2, max(1, round(0.005 * sample_rate)))
    envelope = np.ones(frames)
    envelope[:fade] = np.linspace(0.0, 1.0, fade)
    envelope[-fade:] = np.linspace(1.0, 0.0, fade)
    notes = [np.sin(2 * np.pi * f * t) * envelope for f in frequencies_hz]
    return AudioChunk.from_float(volume * np.concatenate(notes), sample_rate)


def start_beep(sample_rate: int) -> AudioChunk:
    return tone(START_HZ, sample_rate)


def stop_beep(sample_rate: int) -> AudioChunk:
    return tone(STOP_HZ, sample_rate)
