"""Everything the assistant pipeline tells the outside world, as typed events.

The GUI (through its Qt bridge), the headless runner, `hearth ask --json` and the
tests all consume these same dataclasses. Each event carries `timestamp`, from
`time.monotonic()`, so latencies can be measured from the event log alone.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    """Base of all pipeline events."""

    timestamp: float = field(default_factory=_now, kw_only=True)
    turn_id: int = field(default=0, kw_only=True)
    """Number of the turn the event belongs to (0 outside any turn)."""


@dataclass(frozen=True)
class StateChanged(Event):
    state: State
    previous: State


@dataclass(frozen=True)
class TurnStarted(Event):
    trigger: str
    """"push-to-talk", "wake-word", "vad", "text" or "file"."""


@dataclass(frozen=True)
class AudioLevel(Event):
    rms: float
    """Microphone level of the last chunk, 0..1 (for the level meter)."""


@dataclass(frozen=True)
class PartialTranscript(Event):
    text: str


@dataclass(frozen=True)
class FinalTranscript(Event):
    text: str


@dataclass(frozen=True)
class ReplyToken(Event):
    text: str
    """A piece of the assistant's reply as the engine streamed it."""


@dataclass(frozen=True)
class ReplyFinished(Event):
    text: str
    interrupted: bool = False


@dataclass(frozen=True)
class SpeechStarted(Event):
    """The first audio of the reply went to the speaker."""


@dataclass(frozen=True)
class SpeechFinished(Event):
    interrupted: bool = False


@dataclass(frozen=True)
class TurnMetrics(Event):
    """Timings of one turn, all from end of user input (release / endpoint / file end)."""

    stt_final_ms: float = 0.0
    first_token_ms: float = 0.0
    first_audio_ms: float = 0.0
    total_ms: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    tokens_per_second: float = 0.0
    interrupted: bool = False


@dataclass(frozen=True)
class ErrorEvent(Event):
    text: str
    """One sentence for the user, with what to do."""
    code: str = "error"
    """Stable machine-readable kind, e.g. "no-microphone", "tts-failed", "engine-failed"."""


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should be told once, that is not an error (e.g. degraded mode)."""

    text: str
    code: str = "notice"
