"""What the stages pass each other through their queues: one small frozen dataclass per
kind of item, each tied to its turn, so a queue never holds anything untyped.

    capture  -> listen queue: MicAudio | ListenStart | FileAudio | ListenEnd
    listen   -> reply queue:  Question
    reply    -> synth queue:  Sentence | ReplyEnd | Announce
    synth    -> play queue:   Speech | SentenceEnd | ReplyEnd | Beep | AnnouncementAudio

`Stop` ends a stage loop at shutdown (pipecat's EndFrame).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.assistant.turn import Turn
from speech.audio import AudioChunk


@dataclass(frozen=True)
class Stop:
    """The stage loop reading this returns (shutdown)."""


@dataclass(frozen=True)
class MicAudio:
    """Live microphone audio (belongs to no turn until the listen stage decides)."""

    chunk: AudioChunk


@dataclass(frozen=True)
class ListenStart:
    turn: Turn


@dataclass(frozen=True)
class FileAudio:
    """Audio of one turn's question from a file."""

    turn: Turn
    chunk: AudioChunk


@dataclass(frozen=True)
class ListenEnd:
    """End of the question's audio (push-to-talk released, the file's end)."""

    turn: Turn


@dataclass(frozen=True)
class Question:
    """`turn.user_text` is known: answer it."""

    turn: Turn


@dataclass(frozen=True)
class Sentence:
    """One sentence of the reply, to be spoken."""

    turn: Turn
    text: str


@dataclass(frozen=True)
class ReplyEnd:
    """The reply's text is complete; its speech ends after what is queued before this."""

    turn: Turn


@dataclass(frozen=True)
class Announce:
    """Something to say outside any turn, after an optional sound."""

    text: str
    sound: AudioChunk | None = None


@dataclass(frozen=True)
class Speech:
    """Synthesized audio of one sentence of `turn`'s reply."""

    turn: Turn
    chunk: AudioChunk


@dataclass(frozen=True)
class SentenceEnd:
    turn: Turn


@dataclass(frozen=True)
class Beep:
    chunk: AudioChunk


@dataclass(frozen=True)
class AnnouncementAudio:
    """An announcement, ready to play: its sound first, then its speech."""

    text: str
    chunks: Sequence[AudioChunk]


ListenItem = Stop | MicAudio | ListenStart | FileAudio | ListenEnd
ReplyItem = Stop | Question
SynthItem = Stop | Sentence | ReplyEnd | Announce
PlayItem = Stop | Speech | SentenceEnd | ReplyEnd | Beep | AnnouncementAudio

Item = TypeVar("Item")


def drain(q: queue.Queue[Item], keep: Callable[[Item], bool] = lambda item: False) -> None:
    """Drop every queued item but a `Stop` (and what `keep` wants kept), in order."""
    kept: list[Item] = []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, Stop) or keep(item):
            kept.append(item)
    for item in kept:
        q.put(item)
