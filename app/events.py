"""Everything the assistant pipeline tells the outside world, as typed events.

The GUI (through its Qt bridge), the headless runner, `hearth ask --json` and the
tests all consume these same dataclasses. Each event carries `timestamp`, from
`time.monotonic()`, so latencies can be measured from the event log alone.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"


class Code(enum.StrEnum):
    """Stable machine-readable kinds of `ErrorEvent` and `Notice` (compare equal to their
    strings, e.g. `Code.TTS_FAILED == "tts-failed"`)."""

    ERROR = "error"
    NOTICE = "notice"
    NO_MICROPHONE = "no-microphone"
    NO_SPEECH_OUTPUT = "no-speech-output"
    NO_SPEECH = "no-speech"
    MICROPHONE_FAILED = "microphone-failed"
    MICROPHONE_BACK = "microphone-back"
    """A microphone can be used again (or appeared after the start)."""
    STT_FAILED = "stt-failed"
    WAKE_FAILED = "wake-failed"
    ENGINE_FAILED = "engine-failed"
    TTS_FAILED = "tts-failed"
    SPEAKER_FAILED = "speaker-failed"
    HISTORY_FAILED = "history-failed"


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
    error: str = ""
    """Why the turn broke off ('' when nothing failed), e.g. "RuntimeError: crash"."""


@dataclass(frozen=True)
class ErrorEvent(Event):
    text: str
    """One sentence for the user, with what to do."""
    code: Code = Code.ERROR
    """Stable machine-readable kind, e.g. `Code.TTS_FAILED` (a string is converted)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should be told once, that is not an error (e.g. degraded mode)."""

    text: str
    code: Code = Code.NOTICE

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", Code(self.code))


@dataclass(frozen=True)
class Silenced(Event):
    """The user asked for quiet: push-to-talk pressed (key, screen or GPIO button) or Stop.
    A ringing timer stops on it."""


@dataclass(frozen=True)
class IntentMatched(Event):
    """A skill understood the question and answers it instead of the language model
    (sent before the reply's tokens)."""

    intent: str
    """E.g. "HassGetCurrentTime", "HearthArithmetic"."""
    slots: Mapping[str, str] = field(default_factory=dict)
    """What the sentence filled in, e.g. {"name": "pasta", "duration_seconds": "600"}."""


@dataclass(frozen=True)
class Announcement(Event):
    """Something Hearth says on its own (a timer going off), outside any question."""

    text: str
