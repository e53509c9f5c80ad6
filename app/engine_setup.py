"""Load the chat engine that `app.stack.choose_stack` picked for these settings.

`engine = "auto"` / `model = "auto"` are decided there, with the whole stack (runtime,
engine with its memory mode, recognizer, voice) counted against this machine's memory;
a model that cannot fit is refused with a message before anything is loaded, instead of
the kernel killing Hearth half-way through allocation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.models.store import ModelStore
from app.models.tiers import MachineMemory
from app.stack import Stack, choose_stack
from engine import registry
from engine.base import ChatEngine, EngineConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineChoice:
    """What Hearth will run, and the reason in one sentence."""

    backend: str
    model_id: str
    """Catalog id, or "" for a model given by path (or a remote server)."""
    model_path: Path | None
    reason: str
    chat_template: str = ""
    needed_bytes: int = 0
    memory_mode: str = ""
    """The numpy engine's memory mode as chosen ("auto" only with a weights budget)."""
    weights_budget_bytes: int = 0
    """numpy "auto": float32 bytes of weights it may cache."""

    @classmethod
    def of(cls, stack: Stack) -> EngineChoice:
        reason = "; ".join(stack.reasons[k] for k in ("engine", "model", "memory_mode")
                           if stack.reasons.get(k))
        return cls(backend=stack.engine, model_id=stack.model_id, model_path=stack.model_path,
                   reason=reason, chat_template=stack.chat_template,
                   needed_bytes=stack.engine_bytes, memory_mode=stack.memory_mode,
                   weights_budget_bytes=stack.weights_budget_bytes)


def choose_engine(
    settings: Settings,
    backend: str | None = None,
    model: str | None = None,
    *,
    store: ModelStore | None = None,
    memory: MachineMemory | None = None,
) -> EngineChoice:
    """The engine part of `choose_stack` (no loading). Raises ModelNotInstalledError and
    InsufficientMemoryError with what to do."""
    return EngineChoice.of(choose_stack(settings, store, memory, engine=backend, model=model))


def engine_config(settings: Settings, choice: EngineChoice) -> EngineConfig:
    """The load-time engine settings for `choice` (the numpy engine gets the memory mode
    the stack was sized for)."""
    from engine.cpu import resolve_affinity

    e = settings.engine
    numpy = choice.backend == "numpy" and choice.memory_mode
    return EngineConfig(
        model_path=choice.model_path,
        context_length=e.context_length,
        threads=e.threads,
        batch_size=e.batch_size,
        use_mmap=e.use_mmap,
        use_mlock=e.use_mlock,
        memory_mode=choice.memory_mode if numpy else e.memory_mode,
        memory_budget_bytes=choice.weights_budget_bytes if numpy else 0,
        cpu_affinity=resolve_affinity(e.cpu_affinity),
        chat_template=choice.chat_template,
        remote_url=settings.remote.url,
        remote_model=settings.remote.model,
        remote_api_key=settings.remote.api_key,
        timeout_seconds=settings.remote.timeout_seconds,
        seed=e.seed,
    )


def build_engine(
    settings: Settings, backend: str | None = None, model: str | None = None, *,
    stack: Stack | None = None,
) -> tuple[ChatEngine, EngineChoice]:
    """Load the engine of `stack` (chosen now when not given), saying why. The remote
    backend falls back to a local engine when configured to."""
    if settings.cluster.workers and (backend or settings.engine.backend) in (
            "auto", "llama-cpp"):
        # [cluster] workers (issue 17): llama.cpp across machines, this one as fallback.
        from app.cluster import build_cluster_engine

        return build_cluster_engine(settings, backend, model)
    choice = EngineChoice.of(stack) if stack is not None else choose_engine(
        settings, backend, model)
    log.info("engine: %s with %s, because %s", choice.backend,
             choice.model_id or choice.model_path or settings.remote.url, choice.reason)
    config = engine_config(settings, choice)
    if choice.backend != "remote":
        return registry.create_engine(choice.backend, config), choice
    primary = registry.create_engine("remote", config)
    if not settings.remote.fallback_to_local:
        return primary, choice
    from engine.remote import FallbackChatEngine

    local_backend = "auto" if settings.engine.backend == "remote" else settings.engine.backend

    def load_local() -> ChatEngine:
        local = choose_engine(settings, local_backend, model)
        log.info("loading the local %s engine in place of the server", local.backend)
        return registry.create_engine(local.backend, engine_config(settings, local))

    return FallbackChatEngine(primary, load_local), choice

