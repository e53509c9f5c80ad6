"""One chat model across several of the owner's machines (llama.cpp RPC workers).

`[cluster] workers` names `hearth worker` machines. This module

- probes them and pools their memory (`pooled_memory`), which the RAM tier and
  `hearth models recommend` count ("3 x 3.7 GiB -> llama-2-7b-chat-q4_k_m");
- picks the model and the layer split Hearth will use (`cluster_plan`);
- builds `ClusterChatEngine`: the llama.cpp engine with its layers on the workers runs
  in a child process under a per-token watchdog (engine/subprocess_engine.py). When a
  worker dies, freezes or never answers, the reply ends within a few seconds, the best
  local model answers instead and says so, and the workers are tried again after
  `[cluster] retry_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.config import Settings
from app.engine_setup import EngineChoice, choose_engine, engine_config
from app.errors import HearthError, InsufficientMemoryError, ModelNotInstalledError
from app.models.catalog import CatalogEntry
from app.models.store import ModelStore
from app.models.tiers import DOES_NOT_FIT, MachineMemory, fit_label, format_bytes, tier_for
from app.stack import preferred_model
from engine.base import (
    ChatEngine,
    ChatMessage,
    EngineConfig,
    EngineInfo,
    GenerationOptions,
    GenerationStats,
)
from engine.errors import EngineError
from engine.rpc import ClusterError, WorkerStatus, WorkerUnreachableError, probe_worker
from engine.subprocess_engine import EngineProcessError, SubprocessChatEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PooledMemory:
    """The memory of the workers that answered, and those that did not."""

    workers: tuple[WorkerStatus, ...]
    unreachable: tuple[str, ...] = ()
    """One "worker HOST:PORT <reason>" line per worker that did not answer."""

    @property
    def usable_bytes(self) -> int:
        return sum(w.usable_bytes for w in self.workers)

    @property
    def split(self) -> tuple[float, ...]:
        """Each answering worker's share of the layers, by the memory it may use."""
        total = self.usable_bytes
        if not total:
            return tuple(1.0 / len(self.workers) for _ in self.workers)
        return tuple(w.usable_bytes / total for w in self.workers)

    def as_machine_memory(self) -> MachineMemory:
        """The pool judged as one machine, for the RAM tier and fit labels."""
        return MachineMemory(self.usable_bytes, self.usable_bytes)

    def describe(self) -> str:
        """e.g. "3 x 3.7 GiB = 11.1 GiB (1 worker unreachable)"."""
        sizes = [w.usable_bytes for w in self.workers]
        if sizes and max(sizes) - min(sizes) <= 0.05 * max(sizes):
            text = f"{len(sizes)} x {format_bytes(sizes[0])}"
        else:
            text = " + ".join(format_bytes(s) for s in sizes) or "no worker"
        if len(sizes) > 1:
            text += f" = {format_bytes(self.usable_bytes)}"
        if self.unreachable:
            text += f" ({len(self.unreachable)} unreachable)"
        return text


def probe_all(workers: Sequence[str], timeout_seconds: float, *,
              wait_while_busy: bool = False
              ) -> list[WorkerStatus | WorkerUnreachableError]:
    """Probe every worker at once; each result is a status or the error it gave.

    `wait_while_busy`: a worker still counting a client that just left (our own engine,
    stopped a moment ago) is probed again until `timeout_seconds` have passed."""
    def one(worker: str) -> WorkerStatus | WorkerUnreachableError:
        deadline = time.monotonic() + timeout_seconds
        try:
            while True:
                status = probe_worker(worker, timeout_seconds)
                if not (wait_while_busy and status.busy) or time.monotonic() >= deadline:
                    return status
                time.sleep(0.05)
        except WorkerUnreachableError as exc:
            return exc

    if not workers:
        return []
    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        return list(pool.map(one, workers))


def pooled_memory(settings: Settings) -> PooledMemory | None:
    """The workers' pooled memory (probed now), or None when no workers are configured."""
    if not settings.cluster.workers:
        return None
    results = probe_all(settings.cluster.workers, settings.cluster.connect_timeout_seconds)
    return PooledMemory(
        workers=tuple(r for r in results if isinstance(r, WorkerStatus)),
        unreachable=tuple(str(r) for r in results if isinstance(r, WorkerUnreachableError)),
    )


@dataclass(frozen=True)
class ClusterPlan:
    """What runs on the workers: which model, which share each worker holds, and why."""

    workers: tuple[str, ...]
    split: tuple[float, ...]
    model_id: str
    """Catalog id, or "" for a model given by path."""
    model_path: Path
    chat_template: str
    reason: str


def _requested_model(settings: Settings) -> str:
    if settings.cluster.model != "auto":
        return settings.cluster.model
    return settings.engine.model


def cluster_plan(settings: Settings, pooled: PooledMemory, store: ModelStore | None = None,
                 model: str | None = None) -> ClusterPlan:
    """The model and split for these workers. Raises ClusterError when none answers,
    ModelNotInstalledError / InsufficientMemoryError when no model fits the pool."""
    if pooled.unreachable:
        raise ClusterError("; ".join(pooled.unreachable))
    if not pooled.workers:
        raise ClusterError("no worker is configured ([cluster] workers)")
    store = store or ModelStore(settings.data_dir / "models")
    memory = pooled.as_machine_memory()
    requested = model if model not in (None, "auto") else _requested_model(settings)
    entry: CatalogEntry | None = None
    if requested == "auto":
        language = settings.general.language
        tier = tier_for(store.catalog, memory)
        wanted = store.catalog.get(tier.llm.get(language) or tier.llm["en"])
        candidates = [e for e in store.catalog.of_kind("llm")
                      if store.is_installed(e.id) and "llama-cpp" in e.engines
                      and (language in e.languages or not e.languages)
                      and fit_label(e.ram_bytes, memory) != DOES_NOT_FIT]
        if store.is_installed(wanted.id) and "llama-cpp" in wanted.engines:
            entry = wanted
        elif candidates:
            entry = preferred_model(candidates)
        else:
            raise ModelNotInstalledError(
                wanted.id, f"no installed chat model fits the workers' {pooled.describe()}; "
                           f"install one: hearth models install {wanted.id}")
        path = store.path(entry.id)
    elif "/" in requested or requested.endswith((".gguf", ".bin")):
        path = Path(requested).expanduser()
        if not path.is_file():
            raise ModelNotInstalledError(requested, f"no model file at {path}")
    else:
        entry = store.catalog.get(requested)
        if not store.is_installed(entry.id):
            raise ModelNotInstalledError(entry.id)
        path = store.path(entry.id)
    needed = entry.ram_bytes if entry else path.stat().st_size
    if fit_label(needed, memory) == DOES_NOT_FIT:
        raise InsufficientMemoryError(
            f"{entry.id if entry else path.name} needs {format_bytes(needed)}, more than the "
            f"workers' {pooled.describe()} can hold")
    split = pooled.split
    shares = "/".join(f"{100 * s:.0f}" for s in split)
    name = entry.id if entry else path.name
    return ClusterPlan(
        workers=tuple(str(w.endpoint) for w in pooled.workers), split=split,
        model_id=entry.id if entry else "", model_path=path,
        chat_template=settings.engine.chat_template or (entry.chat_template if entry else ""),
        reason=f"{pooled.describe()} -> {name} (layers split {shares}% across "
               f"{', '.join(str(w.endpoint) for w in pooled.workers)})",
    )


def recommend_line(settings: Settings, store: ModelStore | None = None) -> str:
    """One line for `hearth models recommend`: what the workers pool, the model their
    RAM tier gets, the split, and what runs now (e.g. "3 x 3.7 GiB = 11.1 GiB ->
    llama-2-7b-chat-q4_k_m, layers split 33/33/33%"). "" without workers."""
    pooled = pooled_memory(settings)
    if pooled is None:
        return ""
    if not pooled.workers:
        return "cluster: " + "; ".join(pooled.unreachable)
    store = store or ModelStore(settings.data_dir / "models")
    tier = tier_for(store.catalog, pooled.as_machine_memory())
    wanted = tier.llm.get(settings.general.language) or tier.llm["en"]
    shares = "/".join(f"{100 * s:.0f}" for s in pooled.split)
    line = (f"cluster: {pooled.describe()} -> {wanted} ({tier.name} tier), layers split "
            f"{shares}%")
    try:
        plan = cluster_plan(settings, pooled, store)
    except (HearthError, ClusterError) as exc:
        return f"{line}; runs now: nothing on the workers ({exc})"
    return f"{line}; runs now: {plan.model_id or plan.model_path.name}"


def _start_cluster_engine(settings: Settings, plan: ClusterPlan,
                          config: EngineConfig) -> SubprocessChatEngine:
    c = settings.cluster
    config = replace(config, model_path=plan.model_path, chat_template=plan.chat_template)
    return SubprocessChatEngine(
        "engine.rpc:load_rpc_engine",
        (config, list(plan.workers), list(plan.split), c.connect_timeout_seconds),
        label="the cluster engine",
        first_token_timeout_seconds=c.first_token_timeout_seconds,
        token_timeout_seconds=c.token_timeout_seconds,
    )


@dataclass
class _Fault:
    text: str
    told: bool = False
    at: float = field(default_factory=time.monotonic)


class ClusterChatEngine(ChatEngine):
    """The model on the workers while they answer, this machine's best model otherwise.

    A fault ends the reply being streamed; the local engine (built when first needed)
    then answers the same messages, starting with one sentence saying what happened.
    The workers are probed again `retry_seconds` after a fault, in the background; the
    cluster takes over again once its engine has loaded.
    """

    backend_name = "llama-cpp"

    def __init__(self, settings: Settings, config: EngineConfig,
                 local_factory: Callable[[], ChatEngine], model: str | None = None) -> None:
        self._settings = settings
        self._config = config
        self._model = model
        self._local_factory = local_factory
        self._local: ChatEngine | None = None
        self._cluster: SubprocessChatEngine | None = None
        self._plan: ClusterPlan | None = None
        self._fault: _Fault | None = None
        self._lock = threading.Lock()
        self._local_in_use = threading.Lock()
        """Held while the local engine streams, so a returning cluster never closes it
        mid-reply."""
        self._retrying: threading.Thread | None = None
        self._start()

    # -- state --------------------------------------------------------------------

    @property
    def on_cluster(self) -> bool:
        """True while the workers answer."""
        return self._cluster is not None

    @property
    def last_fault(self) -> str:
        """What went wrong last, in one sentence ("" when nothing did)."""
        return self._fault.text if self._fault else ""

    @property
    def plan(self) -> ClusterPlan | None:
        return self._plan

    def _start(self, announce: bool = True) -> bool:
        """Probe the workers and load the cluster engine; on failure, record the fault
        (told in the next local reply when `announce`, else only logged)."""
        try:
            pooled = pooled_memory(self._settings)
            assert pooled is not None
            plan = cluster_plan(self._settings, pooled, model=self._model)
            engine = _start_cluster_engine(self._settings, plan, self._config)
        except (ClusterError, EngineProcessError, HearthError) as exc:
            self._record_fault(f"the cluster could not start: {exc}")
            assert self._fault is not None
            self._fault.told = not announce
            return False
        with self._lock:
            self._cluster, self._plan = engine, plan
            local, self._local = self._local, None
        log.info("cluster engine running: %s", plan.reason)
        if local is not None:
            with self._local_in_use:
                local.close()  # its memory is the cluster engine's now
        return True

    def _record_fault(self, text: str) -> None:
        log.warning("%s; this machine's model answers until the workers are back "
                    "(next try in %g s)", text, self._settings.cluster.retry_seconds)
        self._fault = _Fault(text)

    def _diagnose(self, exc: EngineError) -> str:
        """The engine's error plus which workers are down or frozen now."""
        plan = self._plan
        # Only to name the culprit: a LAN handshake takes milliseconds, so 1 s is plenty.
        results = probe_all(plan.workers if plan else (),
                            min(1.0, self._settings.cluster.connect_timeout_seconds),
                            wait_while_busy=True)
        bad = [str(r) for r in results if isinstance(r, WorkerUnreachableError)]
        return f"{exc}" + (f"; {'; '.join(bad)}" if bad else "")

    def _on_cluster_failure(self, exc: EngineError) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()
        self._record_fault(self._diagnose(exc))

    def _maybe_retry(self) -> None:
        fault = self._fault
        if (self._cluster is not None or fault is None or self._retrying is not None
                or time.monotonic() - fault.at < self._settings.cluster.retry_seconds):
            return

        def retry() -> None:
            try:
                if self._start(announce=False):
                    self._fault = None
            finally:
                self._retrying = None

        self._retrying = threading.Thread(target=retry, name="cluster-retry", daemon=True)
        self._retrying.start()

    def wait_for_retry(self, timeout_seconds: float) -> None:
        """Block until a background retry of the workers has finished (tests, bench)."""
        thread = self._retrying
        if thread is not None:
            thread.join(timeout_seconds)

    def _local_engine(self) -> ChatEngine:
        with self._lock:
            if self._local is None:
                self._local = self._local_factory()
            return self._local

    def _active(self) -> ChatEngine:
        return self._cluster or self._local_engine()

    def _call(self, method: str, *args: object) -> object:
        cluster = self._cluster
        if cluster is not None:
            try:
                return getattr(cluster, method)(*args)
            except EngineProcessError as exc:
                self._on_cluster_failure(exc)
        return getattr(self._local_engine(), method)(*args)

    # -- ChatEngine ---------------------------------------------------------------

    @property
    def context_length(self) -> int:
        return self._active().context_length

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self._call("tokenize", text, add_special)  # type: ignore[return-value]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._call("detokenize", tokens)  # type: ignore[return-value]

    def count_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return self._call("count_prompt_tokens", messages)  # type: ignore[return-value]

    @property
    def last_stats(self) -> GenerationStats | None:
        engine = self._cluster or self._local
        return engine.last_stats if engine else None

    def info(self) -> EngineInfo:
        info = self._active().info()
        details = dict(info.details)
        if self._cluster is not None and self._plan is not None:
            details["cluster"] = self._plan.reason
        elif self._fault is not None:
            details["cluster"] = f"not in use: {self._fault.text}"
        return EngineInfo(info.backend, info.model_path, info.context_length, details)

    def _stream(self, messages: list[ChatMessage], options: GenerationOptions,
                cancel: threading.Event) -> Iterator[str]:
        self._maybe_retry()
        cluster = self._cluster
        if cluster is not None:
            try:
                yield from cluster.chat(messages, options, cancel)
                return
            except EngineProcessError as exc:
                self._on_cluster_failure(exc)
        if cancel.is_set():
            return
        local = self._local_engine()
        fault = self._fault
        if fault is not None and not fault.told:
            fault.told = True
            name = Path(local.info().model_path).name or "its own model"
            yield f"({fault.text[0].upper()}{fault.text[1:]}. This machine answers with {name}.) "
        with self._local_in_use:
            yield from local.chat(messages, options, cancel)

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
            local, self._local = self._local, None
        if cluster is not None:
            cluster.close()
        if local is not None:
            local.close()


def build_cluster_engine(settings: Settings, backend: str | None = None,
                         model: str | None = None) -> tuple[ChatEngine, EngineChoice]:
    """The engine_setup hook: a ClusterChatEngine for `[cluster] workers`, with this
    machine's best choice as its fallback (chosen and loaded only when needed)."""
    from engine import registry

    alone = replace(settings, cluster=replace(settings.cluster, workers=()))

    def local_choice() -> EngineChoice:
        try:
            return choose_engine(alone, backend, model)
        except InsufficientMemoryError:
            # The model asked for is the cluster's; this machine runs what fits it.
            return choose_engine(alone, "auto", "auto")

    def load_local() -> ChatEngine:
        choice = local_choice()
        log.info("loading this machine's %s engine (%s)", choice.backend,
                 choice.model_id or choice.model_path)
        return registry.create_engine(choice.backend, engine_config(alone, choice))

    cluster_config = engine_config(settings, EngineChoice("llama-cpp", "", None, ""))
    engine = ClusterChatEngine(settings, cluster_config, load_local, model)
    plan = engine.plan
    if engine.on_cluster and plan is not None:
        return engine, EngineChoice("llama-cpp", plan.model_id, plan.model_path, plan.reason,
                                    plan.chat_template)
    try:
        return engine, local_choice()
    except HearthError:
        engine.close()
        raise
