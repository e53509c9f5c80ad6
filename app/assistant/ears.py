"""How the listen stage hears: what may start a spoken turn (`StartMode`, from the
`[assistant] trigger` setting) and how speech is told from silence (`Ears`: the
endpointer and the barge-in detector)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from speech.doubletalk import BargeInDetector
from speech.vad import Endpointer


class StartMode(enum.Enum):
    """What starts a spoken turn besides a press (the `[assistant] trigger` setting)."""

    PRESS = "press"
    """Push-to-talk or the button; the wake word too when it is enabled."""
    WAKE_WORD = "wake-word"
    HANDS_FREE = "hands-free"
    """Speech detected by the VAD while idle."""

    @classmethod
    def of(cls, settings: Settings) -> StartMode:
        trigger = settings.assistant.trigger
        return cls(trigger) if trigger in ("wake-word", "hands-free") else cls.PRESS


@dataclass(frozen=True)
class Ears:
    """How the listen stage tells speech from silence, for audio at a given rate."""

    endpointer: Callable[[int], Endpointer]
    """Ends endpointed turns and starts hands-free ones."""
    barge_in: Callable[[int], BargeInDetector | None]
    """Hears a person talking over Hearth's echo-cancelled voice (speech/doubletalk.py);
    None when it cannot be told apart."""

    @classmethod
    def webrtc(cls, settings: Settings) -> Ears:
        """WebRTC's VAD with the [vad] settings, no barge-in by speech (for fakes)."""
        v = settings.vad

        def endpointer(rate: int) -> Endpointer:
            return Endpointer(rate, v.aggressiveness, v.energy_threshold, v.pre_roll_ms,
                              v.end_silence_ms, max_utterance_seconds=v.max_utterance_seconds,
                              quick_end_silence_ms=v.quick_end_silence_ms,
                              unfinished_end_silence_ms=v.unfinished_end_silence_ms)

        return cls(endpointer, lambda rate: None)

    @classmethod
    def from_settings(cls, settings: Settings) -> Ears:
        """[vad] engine (Silero by default) and Silero barge-in (what `hearth` runs)."""
        from app.speech_setup import build_barge_in_detector, build_endpointer

        return cls(lambda rate: build_endpointer(settings, rate),
                   lambda rate: build_barge_in_detector(settings, rate))
