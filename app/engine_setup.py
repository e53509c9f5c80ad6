"""Choose and load the chat engine for these settings, and say why.

`engine = "auto"` picks the backend and model from the machine's RAM tier and what
is installed: llama.cpp when it is importable and the model fits, the built-in numpy
engine otherwise. Before anything is loaded the model's memory need is compared with
what the machine (or its cgroup / rlimit) allows, so an oversized model is refused
with a message instead of crashing half-way through allocation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.errors import InsufficientMemoryError, ModelNotInstalledError
from app.models.catalog import CatalogEntry
from app.models.store import ModelStore
from app.models.tiers import (
    DOES_NOT_FIT,
    MachineMemory,
    detect_memory,
    fit_label,
    format_bytes,
    recommend,
)
from engine import registry
from engine.base import ChatEngine, EngineConfig

log = logging.getLogger(__name__)

# A model given by path has no catalog figure: count its file plus this much for the
# KV cache, activations and runtime.
PATH_MODEL_OVERHEAD = 1.2


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


def _looks_like_path(model: str) -> bool:
    return "/" in model or model.endswith((".gguf", ".bin"))


def _llm_entries(store: ModelStore) -> list[CatalogEntry]:
    return store.catalog.of_kind("llm")


def choose_engine(
    settings: Settings,
    backend: str | None = None,
    model: str | None = None,
    *,
    store: ModelStore | None = None,
    memory: MachineMemory | None = None,
) -> EngineChoice:
    """Decide backend and model (no loading). Raises ModelNotInstalledError and
    InsufficientMemoryError with what to do."""
    store = store or ModelStore(settings.data_dir / "models")
    memory = memory or detect_memory()
    backend = backend or settings.engine.backend
    model = model or settings.engine.model
    language = settings.general.language

    if backend == "remote":
        return EngineChoice(
            backend="remote", model_id="", model_path=None,
            reason=f"the configured server at {settings.remote.url or '(no url set)'}"
            + (" (falls back to the local engine when it is down)"
               if settings.remote.fallback_to_local else ""),
        )

    # Only an "auto" choice depends on llama.cpp being importable; asking imports it
    # (and loads its native library), so a fully named engine and model skip the probe.
    llama_ok = "auto" in (backend, model) and registry.is_available("llama-cpp")
    reasons: list[str] = []
    entry: CatalogEntry | None = None
    path: Path | None = None
    if model == "auto":
        stack = recommend(store.catalog, memory, language, llama_ok)
        reasons.append(stack.reason)
        entry = store.catalog.get(stack.llm)
        if not store.is_installed(entry.id):
            runnable = [
                e for e in _llm_entries(store)
                if store.is_installed(e.id)
                and (language in e.languages or not e.languages)
                and fit_label(e.ram_bytes, memory) != DOES_NOT_FIT
                and (backend == "auto" or backend in e.engines)
            ]
            installed = [e for e in _llm_entries(store) if store.is_installed(e.id)]
            if not runnable and installed:
                smallest = min(installed, key=lambda e: e.ram_bytes)
                raise InsufficientMemoryError(_not_enough_memory(
                    store, smallest, store.path(smallest.id), smallest.ram_bytes, memory,
                    language))
            if not runnable:
                raise ModelNotInstalledError(
                    entry.id,
                    f"no chat model is installed; for this machine install: "
                    f"hearth models install {entry.id}",
                )
            best = max(runnable, key=lambda e: e.ram_bytes)
            reasons.append(f"{entry.id} is not installed (hearth models install {entry.id}), "
                           f"so {best.id} is used")
            entry = best
        if backend == "auto":
            tier_backend_ok = stack.backend in entry.engines and (
                stack.backend != "llama-cpp" or llama_ok)
            if tier_backend_ok:
                backend = stack.backend
            else:
                backend = "llama-cpp" if llama_ok and "llama-cpp" in entry.engines else "numpy"
    elif _looks_like_path(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelNotInstalledError(model, f"no model file at {path}")
        reasons.append(f"the model file {path} was asked for")
    else:
        entry = store.catalog.get(model)
        reasons.append(f"{entry.id} was asked for")

    if backend == "auto":
        if llama_ok and (entry is None or "llama-cpp" in entry.engines):
            backend = "llama-cpp"
            reasons.append("llama-cpp-python is installed")
        else:
            backend = "numpy"
            reasons.append("llama-cpp-python is not installed, so the numpy engine runs it")

    if entry is not None:
        path = store.path(entry.id)
        if backend not in entry.engines:
            reasons.append(f"note: {entry.id} is not listed for the {backend} engine")
    assert path is not None
    needed = entry.ram_bytes if entry else int(path.stat().st_size * PATH_MODEL_OVERHEAD)
    streaming = backend == "numpy" and settings.engine.memory_mode == "stream"
    if not streaming and needed > memory.free_for_models_bytes:
        raise InsufficientMemoryError(_not_enough_memory(store, entry, path, needed, memory,
                                                         language))
    template = settings.engine.chat_template or (entry.chat_template if entry else "")
    return EngineChoice(
        backend=backend, model_id=entry.id if entry else "", model_path=path,
        reason="; ".join(reasons), chat_template=template, needed_bytes=needed,
    )


def _not_enough_memory(
    store: ModelStore,
    entry: CatalogEntry | None,
    path: Path,
    needed: int,
    memory: MachineMemory,
    language: str,
) -> str:
    name = entry.id if entry else path.name
    fitting = [
        e for e in _llm_entries(store)
        if e.ram_bytes <= memory.free_for_models_bytes and language in e.languages
    ]
    hint = ""
    if fitting:
        best = max(fitting, key=lambda e: e.ram_bytes)
        hint = f"; {best.id} fits (hearth models install {best.id}, then --model {best.id})"
    limit = f" under the {memory.limit_source}" if memory.limit_source else ""
    return (f"{name} needs {format_bytes(needed)} of memory but only "
            f"{format_bytes(memory.free_for_models_bytes)} is available{limit}{hint}")


def engine_config(settings: Settings, choice: EngineChoice,
                  memory: MachineMemory | None = None) -> EngineConfig:
    """The load-time engine settings for `choice`."""
    from engine.cpu import resolve_affinity

    e = settings.engine
    budget = 0
    if choice.backend == "numpy" and e.memory_mode == "auto":
        memory = memory or detect_memory()
        budget = max(0, memory.free_for_models_bytes - 256 * 2**20)
    return EngineConfig(
        model_path=choice.model_path,
        context_length=e.context_length,
        threads=e.threads,
        batch_size=e.batch_size,
        use_mmap=e.use_mmap,
        use_mlock=e.use_mlock,
        memory_mode=e.memory_mode,
        memory_budget_bytes=budget,
        cpu_affinity=resolve_affinity(e.cpu_affinity),
        chat_template=choice.chat_template,
        remote_url=settings.remote.url,
        remote_model=settings.remote.model,
        remote_api_key=settings.remote.api_key,
        timeout_seconds=settings.remote.timeout_seconds,
        seed=e.seed,
    )


def build_engine(
    settings: Settings, backend: str | None = None, model: str | None = None
) -> tuple[ChatEngine, EngineChoice]:
    """Choose, log why, and load. The remote backend falls back to a local engine when
    configured to."""
    if settings.cluster.workers and (backend or settings.engine.backend) in (
            "auto", "llama-cpp"):
        # [cluster] workers (issue 17): llama.cpp across machines, this one as fallback.
        from app.cluster import build_cluster_engine

        return build_cluster_engine(settings, backend, model)
    choice = choose_engine(settings, backend, model)
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


def generation_defaults(settings: Settings) -> dict[str, object]:
    """GenerationOptions keyword arguments from the settings (CLI flags override them)."""
    e = settings.engine
    return {
        "max_tokens": e.max_tokens, "temperature": e.temperature, "top_k": e.top_k,
        "top_p": e.top_p, "min_p": e.min_p, "repeat_penalty": e.repeat_penalty,
        "seed": None if e.seed < 0 else e.seed,
    }
