"""A reply drafted in the pause with the real llama.cpp engine (SmolLM2, greedy): the
question that matches the draft gets, from the one generation begun in the pause, the
very reply it gets undrafted."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from app.events import ReplyToken, TurnMetrics
from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.llama_cpp import LlamaCppEngine
from tests.unit.test_reply_draft import Rig, until

QUESTION = "Tell me about Paris."
GREEDY = {"temperature": 0.0, "max_tokens": 40}


class _CountingLlama(LlamaCppEngine):
    """Counts `chat` calls (a used draft must not start a second generation)."""

    chats = 0

    def chat(self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None,
             cancel: threading.Event | None = None) -> Iterator[str]:
        self.chats += 1
        return super().chat(messages, options, cancel)


def test_a_used_draft_gives_the_undrafted_reply(smollm2_gguf: Path) -> None:
    engine = _CountingLlama(EngineConfig(model_path=smollm2_gguf, context_length=1024,
                                         threads=1))
    try:
        undrafted = Rig(engine, engine_settings=GREEDY)
        try:
            turn = undrafted.listen("")  # no pause heard: nothing drafted
            undrafted.ask(turn, QUESTION)
            undrafted.events.wait_count(TurnMetrics, timeout=60)
        finally:
            undrafted.stop()
        assert engine.chats == 1
        reply = undrafted.tokens()

        drafted = Rig(engine, engine_settings=GREEDY)
        try:
            turn = drafted.listen(QUESTION)
            until(lambda: bool(drafted.synthesizer.sentences), timeout=60)
            assert drafted.events.of(ReplyToken) == [] and drafted.speaker.played == []
            assert len(drafted.synthesizer.sentences) == 1
            drafted.ask(turn, QUESTION)
            drafted.events.wait_count(TurnMetrics, timeout=60)
        finally:
            drafted.stop()
        assert engine.chats == 2  # the draft's generation went on: none after it
        assert drafted.tokens() == reply and reply.strip()
        # the draft stopped at its first sentence, and the rest came after the question
        assert len(drafted.spoken()) > 1 and drafted.spoken() == drafted.synthesizer.sentences
    finally:
        engine.close()
