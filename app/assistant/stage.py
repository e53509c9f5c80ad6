"""The record of one rebuildable component of the pipeline (microphone, recognizer, wake
word, engine, voice, speaker): what it is called, how its failure is reported, which
thread runs it, how to build a fresh one, and the turn it is working on.

The stages read `component` each time they use it, so when the supervisor rebuilds a
failed component the stage simply goes on with the new one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from app.assistant.turn import Turn
from app.events import Code
from engine.base import ChatEngine
from speech.io import AudioSink, AudioSource
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.wake import WakeWordDetector

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class Stage(Generic[T]):
    name: str
    code: Code
    """Code of the `ErrorEvent` when it fails."""
    words: str
    """How a sentence for the user names it: "The microphone", "The voice"."""
    thread: str
    """The stage thread it runs on (`hearth-<thread>`)."""
    factory: Callable[[], T] | None
    component: T | None
    reusable: bool = True
    """Without a factory, a failed component is reset and used again (False: dropped)."""
    busy: Turn | None = None
    """The turn it is working on (the supervisor closes that turn when it fails)."""

    def rebuild(self) -> T | None:
        """A fresh component from the factory (the old one closed), or the old one reset;
        None when there is none that works."""
        old = self.component
        if self.factory is None:
            if old is not None and hasattr(old, "reset"):
                with contextlib.suppress(Exception):
                    old.reset()
            return old if self.reusable else None
        try:
            fresh = self.factory()
        except Exception:
            log.exception("could not rebuild the %s stage", self.name)
            return None
        if old is not None and old is not fresh:
            with contextlib.suppress(Exception):
                old.close()
        self.component = fresh
        log.info("rebuilt the %s stage", self.name)
        return fresh


@dataclass(eq=False)
class Stages:
    """Every component's record, by name (the keys of `factories`)."""

    microphone: Stage[AudioSource]
    recognizer: Stage[SpeechRecognizer]
    wake: Stage[WakeWordDetector]
    engine: Stage[ChatEngine]
    synthesizer: Stage[SpeechSynthesizer]
    speaker: Stage[AudioSink]

    def model_ids(self, *, speaking: bool) -> dict[str, str]:
        """What answers, for the history: engine, model file, recognizer and voice."""
        engine = self.engine.component
        info = engine.info() if engine is not None else None
        return {
            "engine": info.backend if info else "",
            "model": Path(info.model_path).name if info and info.model_path else "",
            "recognizer": getattr(self.recognizer.component, "name", ""),
            "voice": getattr(self.synthesizer.component, "name", "") if speaking else "",
        }

    def in_closing_order(self) -> Iterator[Stage[Any]]:
        """Devices first, the engine (the biggest) last."""
        yield from (self.microphone, self.speaker, self.wake, self.recognizer,
                    self.synthesizer, self.engine)

    @classmethod
    def of(cls, factories: Mapping[str, Callable[[], Any]], *, microphone: AudioSource | None,
           recognizer: SpeechRecognizer | None, wake: WakeWordDetector | None,
           engine: ChatEngine, synthesizer: SpeechSynthesizer | None,
           speaker: AudioSink | None) -> Stages:
        """The records of these components; `factories` by stage name (may lack some)."""

        def stage(name: str, code: Code, words: str, thread: str, component: Any,
                  reusable: bool = True) -> Stage[Any]:
            return Stage(name, code, words, thread, factories.get(name), component, reusable)

        return cls(
            microphone=stage("microphone", Code.MICROPHONE_FAILED, "The microphone",
                             "microphone", microphone),
            recognizer=stage("recognizer", Code.STT_FAILED, "Speech recognition", "listen",
                             recognizer),
            wake=stage("wake", Code.WAKE_FAILED, "Wake-word detection", "listen", wake),
            engine=stage("engine", Code.ENGINE_FAILED, "The language model", "engine", engine),
            # a voice that failed without a factory is not used again: text-only replies
            synthesizer=stage("synthesizer", Code.TTS_FAILED, "The voice", "synthesizer",
                              synthesizer, reusable=False),
            speaker=stage("speaker", Code.SPEAKER_FAILED, "The speaker", "speaker", speaker,
                          reusable=False),
        )
