"""Build a complete `Assistant` from the settings: every stage, plus the factories the
supervisor uses to rebuild a stage that failed.

A stage that cannot be built degrades instead of stopping Hearth: no microphone (or
no recognizer) means typed questions, no speaker or voice means text-only replies,
no history database (a full disk) means unsaved turns; the assistant tells the user
once. Only the chat engine is required.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.assistant.ears import Ears
from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.engine_setup import EngineChoice, build_engine
from app.errors import HearthError, HistoryError
from app.history import History
from app.skills import build_skills
from app.speech_setup import (
    build_recognizer,
    build_synthesizer,
    build_wake_detector,
    open_microphone,
    open_speaker,
)
from app.stack import Stack, choose_stack
from engine.base import ChatEngine
from engine.cpu import cpu_info
from speech.errors import SpeechError

log = logging.getLogger(__name__)


def leave_a_core_for_the_voice(settings: Settings) -> Settings:
    """With spoken replies and `engine.threads = 0` (auto), run inference on one thread
    fewer than the fast cores, so the voice synthesizing sentence 1 while the model writes
    sentence 2 is not starved: on 2 cores under load llama.cpp with 2 threads took
    ~6.7 s to its first token against ~0.1 s with 1 (bench/latency.py)."""
    if settings.engine.threads != 0 or not settings.tts.enabled:
        return settings
    threads = max(1, cpu_info().default_threads - 1)
    return replace(settings, "engine", threads=threads)


def _optional(what: str, build: Callable[[], Any]) -> Any:
    """`build()`, or None (logged) when the stage is unavailable on this machine."""
    try:
        return build()
    except (SpeechError, HearthError, OSError) as exc:
        log.warning("%s unavailable: %s", what, exc)
        return None


def build_assistant(
    settings: Settings,
    *,
    backend: str | None = None,
    model: str | None = None,
    engine: ChatEngine | None = None,
    voice_input: bool = True,
    voice_output: bool = True,
    history: History | bool | None = True,
    stack: Stack | None = None,
) -> tuple[Assistant, EngineChoice | None]:
    """The assistant the settings describe (not started) and how its engine was chosen.

    `engine` reuses a loaded engine (its choice is then None); `voice_input` /
    `voice_output` False leave out the microphone / speaker; `history` True opens the
    configured history (None when switched off), or pass one, or False for none.
    Engine, recognizer and voice are those of one `choose_stack` (`stack`, when given).
    """
    choice: EngineChoice | None = None
    if voice_output:
        settings = leave_a_core_for_the_voice(settings)
    chosen = stack
    if chosen is None and (engine is None or voice_input or voice_output):
        chosen = choose_stack(settings, engine=backend, model=model)
        log.info("stack: %s (%s)", chosen.summary(), chosen.explain())
    if engine is None:
        engine, choice = build_engine(settings, backend, model, stack=chosen)
    recognizer_of, voice_of = (((chosen.recognizer, chosen.recognizer_model),
                                (chosen.voice, chosen.voice_model)) if chosen else ((), ()))
    factories: dict[str, Callable[[], Any]] = {
        "engine": lambda: build_engine(settings, backend, model, stack=chosen)[0],
        "recognizer": lambda: build_recognizer(settings, *recognizer_of),
        "synthesizer": lambda: build_synthesizer(settings, *voice_of),
        "microphone": lambda: open_microphone(settings),
        "speaker": lambda: open_speaker(settings),
        "wake": lambda: build_wake_detector(settings),
    }
    recognizer = _optional("speech recognition", factories["recognizer"]) if voice_input else None
    microphone = (_optional("microphone", factories["microphone"])
                  if voice_input and recognizer is not None else None)
    wake = _optional("wake word", factories["wake"]) if microphone is not None else None
    want_voice = voice_output and settings.tts.enabled
    synthesizer = _optional("voice", factories["synthesizer"]) if want_voice else None
    speaker = (_optional("speaker", factories["speaker"])
               if want_voice and synthesizer is not None else None)
    unsaved = ""
    if history is True:
        try:
            history = History.open(settings)
        except HistoryError as exc:  # e.g. a full disk: answer anyway, unsaved
            history, unsaved = None, str(exc)
    skills = build_skills(settings)  # the time, timers, arithmetic: before the engine
    assistant = Assistant(
        settings, engine=engine, recognizer=recognizer, synthesizer=synthesizer,
        microphone=microphone, speaker=speaker, history=history or None, wake=wake,
        factories=factories, skills=skills, ears=Ears.from_settings(settings))
    if skills is not None:
        skills.attach(assistant)  # timers ring through it; Silenced stops them
    if unsaved:
        assistant.history_failed(unsaved)
    return assistant, choice
