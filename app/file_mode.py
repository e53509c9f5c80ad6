"""File mode: one full turn from a WAV file (or typed text) with no audio devices.

The same `Assistant` as live mode runs it: the question's audio is fed to the
recognizer as fast as it goes, the spoken reply is collected by a `WavSink` (and
written to a file if asked). The result is a dict of the transcript, the reply and
the turn's timings, which `hearth ask --json` prints and `bench/latency.py` collects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.assistant.pipeline import Assistant
from app.assistant.reply import Skills
from app.config import Settings
from app.errors import HearthError
from app.events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    IntentMatched,
    Notice,
    ReplyFinished,
    ReplyToken,
    TurnMetrics,
)
from app.history import History
from engine.base import ChatEngine
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.wav import WavSink, read_wav

RESULT_KEYS = ("transcript", "reply", "interrupted", "engine", "model", "recognizer", "voice",
               "stt_final_ms", "first_token_ms", "first_audio_ms", "total_ms",
               "prompt_tokens", "generated_tokens", "tokens_per_second", "reply_audio_seconds",
               "out", "intent")
"""Keys of the result dict (and of `hearth ask --json`)."""

DEVICE_NOTICES = frozenset({"no-microphone", "no-speech-output"})
"""Notice codes about missing audio devices: file mode opens none, so they are not news."""


class FileTurnError(HearthError):
    """The turn ended with an error (the message is the assistant's ErrorEvent text)."""


def run_file_turn(
    settings: Settings,
    *,
    engine: ChatEngine,
    recognizer: SpeechRecognizer | None = None,
    synthesizer: SpeechSynthesizer | None = None,
    wav: Path | None = None,
    text: str | None = None,
    out: Path | None = None,
    history: History | None = None,
    model_id: str = "",
    on_token: Callable[[str], None] | None = None,
    on_notice: Callable[[Notice], None] | None = None,
    timeout_seconds: float = 300.0,
    skills: Skills | None = None,
) -> dict[str, Any]:
    """Ask once, from `wav` (recognized with `recognizer`) or `text`; the result dict.

    With a `synthesizer` the reply is spoken into a WAV sink (saved to `out` when
    given), which is what `first_audio_ms` measures. `on_token` sees each reply piece,
    `on_notice` each `Notice` (say, that the turn could not be saved to the history)
    except those about audio devices, which file mode does not use. `recognizer` and
    `voice` in the result are None when not used. `skills` answer first, as in live
    mode; `intent` in the result is the skill's {"name", "slots"}, or None.
    """
    if (wav is None) == (text is None):
        raise ValueError("ask from exactly one of wav or text")
    sink = WavSink(out) if synthesizer is not None else None
    assistant = Assistant(settings, engine=engine, recognizer=recognizer,
                          synthesizer=synthesizer, speaker=sink, history=history,
                          warm_up=False, skills=skills)
    events: list[Event] = []
    done = threading.Event()

    def collect(event: Event) -> None:
        events.append(event)
        if isinstance(event, ReplyToken) and on_token is not None:
            on_token(event.text)
        if isinstance(event, Notice) and on_notice is not None \
                and event.code not in DEVICE_NOTICES:
            on_notice(event)
        if isinstance(event, TurnMetrics | ErrorEvent):
            done.set()
        if isinstance(event, FinalTranscript) and not event.text:
            done.set()  # nothing was recognized: there will be no reply

    assistant.subscribe(collect)
    assistant.start()
    try:
        if wav is not None:
            assistant.submit_audio(read_wav(wav))
        else:
            assistant.submit_text(text or "")
        if not done.wait(timeout_seconds):
            raise FileTurnError(f"the turn did not finish within {timeout_seconds:.0f} s")
    finally:
        assistant.shutdown()
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    if errors:
        raise FileTurnError(errors[0].text)
    return _result(events, assistant, sink, out, model_id)


def _result(events: list[Event], assistant: Assistant, sink: WavSink | None,
            out: Path | None, model_id: str) -> dict[str, Any]:
    transcript = next((e.text for e in events if isinstance(e, FinalTranscript)), "")
    reply = next((e for e in events if isinstance(e, ReplyFinished)), None)
    metrics = next((e for e in events if isinstance(e, TurnMetrics)), TurnMetrics())
    intent = next((e for e in events if isinstance(e, IntentMatched)), None)
    info = assistant.engine.info()
    saved = sink.save() if sink is not None and out is not None else None
    return {
        "transcript": transcript,
        "reply": reply.text.strip() if reply else "",
        "interrupted": bool(reply and reply.interrupted),
        "engine": info.backend,
        "model": model_id or (Path(info.model_path).name if info.model_path else ""),
        "recognizer": assistant.recognizer.name if assistant.recognizer else None,
        "voice": assistant.synthesizer.name if assistant.synthesizer else None,
        "stt_final_ms": metrics.stt_final_ms,
        "first_token_ms": metrics.first_token_ms,
        "first_audio_ms": metrics.first_audio_ms,
        "total_ms": metrics.total_ms,
        "prompt_tokens": metrics.prompt_tokens,
        "generated_tokens": metrics.generated_tokens,
        "tokens_per_second": metrics.tokens_per_second,
        "reply_audio_seconds": round(sink.seconds, 3) if sink is not None else 0.0,
        "out": str(saved) if saved else None,
        "intent": {"name": intent.intent, "slots": dict(intent.slots)} if intent else None,
    }
