"""Conversation memory with the real llama.cpp engine: past the history limit, the
assistant's turns reuse the cached prefix of the prompt, so the prompt tokens evaluated
per turn stay bounded instead of the whole kept history being evaluated every turn.
(`bench llama` reports the figures.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.assistant.pipeline import Assistant
from app.config import Settings, replace
from app.events import TurnMetrics
from engine.base import ChatEngine, EngineConfig
from engine.registry import create_engine
from tests.fakes import EventLog

QUESTIONS = [f"Give me a short fact about the number {n}." for n in range(12)]
LIMIT = 4


@pytest.fixture(scope="module")
def llama(smollm2_gguf: Path) -> Iterator[ChatEngine]:
    engine = create_engine("llama-cpp", EngineConfig(model_path=smollm2_gguf,
                                                      context_length=2048, threads=1))
    yield engine
    engine.close()


def test_turns_past_the_history_limit_reuse_the_cached_prompt(llama: ChatEngine) -> None:
    settings = replace(Settings(), "engine", temperature=0.0, seed=7, max_tokens=24)
    settings = replace(settings, "assistant", max_history_turns=LIMIT)
    settings = replace(settings, "history", enabled=False)
    assistant = Assistant(settings, engine=llama, recognizer=None, synthesizer=None)
    log = EventLog()
    evaluated: list[int] = []
    prompt: list[int] = []

    def count(event: object) -> None:
        if isinstance(event, TurnMetrics):  # the next turn starts only after this one
            stats = llama.last_stats
            assert stats is not None
            evaluated.append(stats.prompt_tokens - stats.cached_prompt_tokens)
            prompt.append(stats.prompt_tokens)

    assistant.subscribe(count)
    assistant.subscribe(log)
    assistant.start()
    try:
        for i, question in enumerate(QUESTIONS):
            assistant.submit_text(question)
            log.wait_count(TurnMetrics, i + 1, timeout=120)
    finally:
        assistant.shutdown(timeout=30)
    print(f"prompt tokens per turn: {prompt}\nevaluated per turn:    {evaluated}")
    past = range(LIMIT + 1, len(QUESTIONS))
    # the kept history moves in blocks of two turns: every other turn only the newest
    # exchange is evaluated, the rest of the prompt comes from the KV cache
    cheap = [i for i in past if evaluated[i] < prompt[i] // 3]
    assert len(cheap) >= len(past) // 2, (evaluated, prompt)
    assert sum(evaluated[i] for i in past) < 0.7 * sum(prompt[i] for i in past)
