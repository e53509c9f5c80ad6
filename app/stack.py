"""The one place that decides what Hearth runs: chat engine and model, the numpy engine's
memory mode, speech recognizer and voice, each with the reason in words.

`hearth doctor`, `hearth models recommend`, the GUI status bar, `hearth ask` and
`build_assistant` all call `choose_stack`, so what Hearth says it runs and what it runs
cannot differ.

How it decides:
- The machine's tier (catalog [[tier]] table, by usable RAM) names the preferred engine,
  model, recognizer and voice per language; settings that are not "auto" win.
- A preference that is not installed or not importable gives way to the next best, with
  the reason; a file derived from another (the Q8_0 re-quantization of the bundled Q4_1)
  is never taken over its source by an engine that reads the source.
- The whole stack is counted against the memory budget: the Python runtime, the engine
  with its model, memory mode and KV cache, the recognizer and the voice, with figures
  measured in memory cgroups from a cold page cache (bench/cgroup.py: the catalog's
  ram_bytes and the constants below; bench/tiers.py checks them per tier). When it does
  not fit, the voice falls back to espeak-ng, Whisper to PocketSphinx, and the numpy
  engine is given what is left: float32 weights ("cache"), part of them ("auto" with a
  budget), the mapped file ("mmap"), or one layer at a time ("stream").
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.errors import CatalogError, InsufficientMemoryError, ModelNotInstalledError
from app.models.catalog import Catalog, CatalogEntry, Tier
from app.models.store import ModelStore
from app.models.tiers import MachineMemory, format_bytes, stack_budget_bytes, tier_for
from app.speech_setup import ESPEAK_VOICES, PIPER_VOICES, POCKETSPHINX_MODEL, VOSK_MODELS

RUNTIME_BYTES = 32 * 2**20
"""Python, numpy and Hearth's modules with nothing loaded (measured: 24 MiB of anonymous
and mapped memory importing what `hearth ask` imports, from a cold page cache)."""
ESPEAK_BYTES = 8 * 2**20
"""espeak-ng speaking a long sentence (a child process, in the same cgroup): measured 5 MiB."""
NUMPY_EXTRA_BYTES = 88 * 2**20
"""The numpy engine besides its weights: its code, activations, logits, and the float16
KV cache at 2048 tokens (2 x 2 bytes x 30 layers x 192 x 2048 = 45 MiB for SmolLM2-135M,
46 MiB for TinyLlama). Measured with the mapped Q4_1 file: 137 MiB with the KV cache of
one turn, of which 94 MiB is the file, so 43 MiB plus the full cache."""
STREAM_RESIDENT_SHARE = 0.15
"""Share of the model file that "stream" keeps resident (the layer being computed and
the pages the kernel reads ahead)."""
MIN_PARTIAL_CACHE_SHARE = 0.1
"""Below this share of its float32 size, caching part of the weights is not worth it."""
CATALOG_CONTEXT = 2048
"""Tokens of context the catalog's memory figures were measured with (the default)."""
PATH_MODEL_OVERHEAD = 1.2
"""A model given by path has no catalog figure: its file plus this much."""
WHISPER_MIN_CORES = 2
"""Whisper's encoder needs two cores to finish a short question in about a second."""


@dataclass(frozen=True)
class Stack:
    """What Hearth runs on this machine, and why."""

    engine: str
    """"llama-cpp", "numpy" or "remote"."""
    model: str
    """Catalog id; a file path for a model given by path; "" for a remote server."""
    memory_mode: str
    """numpy: "cache", "auto", "mmap", "stream" (or "reference"); llama.cpp: "mmap" or
    "read"; "" for a remote server."""
    recognizer: str
    """"whisper", "pocketsphinx" or "vosk"."""
    recognizer_model: str
    """Catalog id or model folder."""
    voice: str
    """"piper", "espeak-ng", or "" when spoken replies are off."""
    voice_model: str
    """Piper catalog id or .onnx path, or an espeak-ng voice name."""
    reasons: dict[str, str] = field(default_factory=dict)
    """"engine", "model", "memory_mode", "recognizer", "voice" -> why, in words."""
    tier: str = ""
    budget_bytes: int = 0
    """What the whole stack may take on this machine."""
    needed_bytes: int = 0
    """What the whole stack is expected to take at its peak."""
    engine_bytes: int = 0
    """The chat engine's share of `needed_bytes`."""
    weights_budget_bytes: int = 0
    """numpy "auto": float32 bytes of weights it may cache."""
    model_path: Path | None = None
    chat_template: str = ""
    to_install: tuple[str, ...] = ()
    """Catalog ids this machine's tier would use that are not installed."""

    @property
    def model_id(self) -> str:
        """The catalog id ("" for a model given by path or a remote server)."""
        return "" if self.model_path is not None and self.model == str(self.model_path) \
            else self.model

    @property
    def fits(self) -> bool:
        return self.needed_bytes <= self.budget_bytes

    def summary(self) -> str:
        """One line: 'llama-cpp + smollm2-135m-instruct-q4_1 (mmap), pocketsphinx, espeak-ng'."""
        mode = f" ({self.memory_mode})" if self.memory_mode else ""
        model = Path(self.model).name if "/" in self.model else self.model
        engine = f"{self.engine} + {model}{mode}" if model else self.engine
        return f"{engine}, {self.recognizer}, {self.voice or 'no voice'}"

    def explain(self) -> str:
        """The reasons, one clause each."""
        return "; ".join(f"{key}: {text}" for key, text in self.reasons.items())


# ---------------------------------------------------------------- memory figures

def engine_bytes(entry: CatalogEntry | None, engine: str, mode: str,
                 path: Path | None = None) -> int:
    """Peak memory of `engine` running `entry` (or the file at `path`) in `mode`.

    llama.cpp: the catalog's ram_bytes, measured (mapped weights, f16 KV cache at 2048
    tokens, compute buffers, its library). numpy: its own part plus the weights as `mode`
    holds them: float32 ("cache", and "reference", which unpacks every matrix to float32),
    the mapped file ("mmap"), or a share of the file ("stream"); "auto" is counted as
    "mmap" plus the float32 budget it is given."""
    if engine == "remote":
        return 0
    if entry is None:
        file_bytes = path.stat().st_size if path is not None and path.is_file() else 0
        if engine != "numpy":
            return int(file_bytes * PATH_MODEL_OVERHEAD)
        float32 = 8 * file_bytes  # not knowing its format, as if 4-bit
    elif engine != "numpy":
        return entry.ram_bytes
    else:
        file_bytes = entry.size_bytes or entry.ram_bytes // 2
        float32 = 4 * entry.params or 8 * file_bytes
    weights = {"cache": float32, "reference": float32,
               "stream": int(STREAM_RESIDENT_SHARE * file_bytes)}
    return NUMPY_EXTRA_BYTES + weights.get(mode, file_bytes)


def recognizer_bytes(catalog: Catalog, model: str) -> int:
    return _catalog_bytes(catalog, model)


def voice_bytes(catalog: Catalog, voice: str, model: str) -> int:
    if voice == "espeak-ng":
        return ESPEAK_BYTES
    return _catalog_bytes(catalog, model) if voice else 0


def _catalog_bytes(catalog: Catalog, model_id: str) -> int:
    try:
        return catalog.get(model_id).ram_bytes
    except CatalogError:  # a folder or .onnx path: no figure; count like the largest of kind
        return max((e.ram_bytes for e in catalog.entries if e.kind in ("stt", "tts")),
                   default=0)


def context_bytes(path: Path | None, context_length: int, engine: str) -> int:
    """What a KV cache of `context_length` tokens takes over (or under) the one of
    CATALOG_CONTEXT tokens the catalog's figures were measured with: llama.cpp and the numpy
    engine both keep K and V in f16. The model's shape comes from its GGUF header;
    0 when it cannot be read (a model not installed yet, another format)."""
    if engine == "remote" or path is None or path.suffix != ".gguf" or not path.is_file():
        return 0
    from engine.errors import ModelFormatError
    from engine.tokenizer.gguf_metadata import read_gguf_metadata

    try:
        meta = read_gguf_metadata(path)
    except (ModelFormatError, OSError):
        return 0
    arch = meta.get("general.architecture", "llama")
    layers = meta.get(f"{arch}.block_count", 0)
    heads = meta.get(f"{arch}.attention.head_count", 0)
    kv_heads = meta.get(f"{arch}.attention.head_count_kv", heads)
    dim = meta.get(f"{arch}.embedding_length", 0)
    if not (layers and heads and dim):
        return 0
    per_token = 2 * layers * kv_heads * (dim // heads) * 2
    return (context_length - CATALOG_CONTEXT) * per_token


# ---------------------------------------------------------------- the choice

def _looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.startswith("~") \
        or value.endswith((".gguf", ".bin", ".onnx"))


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _llama_cpp_available() -> bool:
    from engine import registry

    return registry.is_available("llama-cpp")


def _derived_source(entry: CatalogEntry) -> str:
    return next((s.derived_from for s in entry.sources if s.type == "derived"), "")


def preferred_model(candidates: list[CatalogEntry]) -> CatalogEntry:
    """Which of the installed chat models `candidates` to take when the wanted one is not
    installed: sources before the files derived from them, then the largest."""
    originals = [e for e in candidates if not _derived_source(e)] or candidates
    return max(originals, key=lambda e: e.ram_bytes)


def _prefer_source(store: ModelStore, entry: CatalogEntry, engine: str) -> CatalogEntry:
    """The file `entry` was derived from, when it is installed and `engine` reads it:
    a re-quantization carries its source's rounding plus its own."""
    source_id = _derived_source(entry)
    if not source_id or not store.is_installed(source_id):
        return entry
    source = store.catalog.get(source_id)
    return source if engine in source.engines else entry


class _Chooser:
    """One decision, step by step; the steps share settings, store and budget."""

    def __init__(self, settings: Settings, store: ModelStore, memory: MachineMemory,
                 engine: str | None, model: str | None) -> None:
        self.settings = settings
        self.store = store
        self.catalog = store.catalog
        self.memory = memory
        self.language = settings.general.language
        self.engine = engine or settings.engine.backend
        self.model = model or settings.engine.model
        self.tier: Tier = tier_for(self.catalog, memory)
        self.budget = stack_budget_bytes(memory)
        self.reasons: dict[str, str] = {}
        self.to_install: list[str] = []
        self._llama: bool | None = None

    def llama_ok(self) -> bool:
        if self._llama is None:
            self._llama = _llama_cpp_available()
        return self._llama

    def tier_pick(self, table: dict[str, str]) -> str:
        return table.get(self.language) or table.get("en", "")

    # ------------------------------------------------------------ chat engine and model

    def choose_engine(self) -> tuple[str, CatalogEntry | None, Path | None]:
        if self.engine == "remote":
            remote = self.settings.remote
            self.reasons["engine"] = (
                f"the configured server at {remote.url or '(no url set)'}"
                + (" (the local engine answers when it is down)"
                   if remote.fallback_to_local else ""))
            return "remote", None, None
        if self.model == "auto":
            entry = self._auto_model()
        elif _looks_like_path(self.model):
            path = Path(self.model).expanduser()
            if not path.is_file():
                raise ModelNotInstalledError(self.model, f"no model file at {path}")
            self.reasons["model"] = f"the model file {path} was asked for"
            return self._engine_for(None), None, path
        else:
            entry = self.catalog.get(self.model)
            self.reasons["model"] = f"{entry.id} was asked for"
        engine = self._engine_for(entry)
        if self.model == "auto":
            preferred = _prefer_source(self.store, entry, engine)
            if preferred is not entry:
                self.reasons["model"] += (f"; {preferred.id} rather than {entry.id}, which "
                                          f"is derived from it and only adds rounding")
                entry = preferred
        if engine not in entry.engines:
            self.reasons["engine"] += f" (note: {entry.id} is not listed for {engine})"
        return engine, entry, self.store.path(entry.id)

    def _auto_model(self) -> CatalogEntry:
        wanted = self.catalog.get(self.tier_pick(self.tier.llm))
        if self.store.is_installed(wanted.id):
            self.reasons["model"] = f"the {self.tier.name} tier's chat model for " \
                                    f"{self.language!r}"
            return wanted
        self.to_install.append(wanted.id)
        installed = [e for e in self.catalog.of_kind("llm") if self.store.is_installed(e.id)
                     and (self.language in e.languages or not e.languages)
                     and (self.engine == "auto" or self.engine in e.engines)]
        if not installed:
            raise ModelNotInstalledError(
                wanted.id, f"no chat model is installed; for this machine install: "
                           f"hearth models install {wanted.id}")
        fitting = [e for e in installed if e.ram_bytes + RUNTIME_BYTES <= self.budget]
        best = preferred_model(fitting or installed)
        self.reasons["model"] = (f"the {self.tier.name} tier's {wanted.id} is not installed "
                                 f"(hearth models install {wanted.id}), so {best.id}")
        return best

    def _engine_for(self, entry: CatalogEntry | None) -> str:
        if self.engine != "auto":
            self.reasons["engine"] = f"[engine] backend = {self.engine!r}" \
                if self.engine == self.settings.engine.backend else f"{self.engine} was asked for"
            return self.engine
        engines = entry.engines if entry is not None else ("llama-cpp", "numpy")
        if self.tier.backend in engines and (self.tier.backend != "llama-cpp"
                                             or self.llama_ok()):
            self.reasons["engine"] = f"{self.tier.backend}, the {self.tier.name} tier's engine"
            return self.tier.backend
        if "llama-cpp" in engines and self.llama_ok():
            self.reasons["engine"] = "llama.cpp is installed and runs this model"
            return "llama-cpp"
        self.reasons["engine"] = ("llama-cpp-python is not installed, so the built-in numpy "
                                  "engine runs it" if not self.llama_ok()
                                  else "the built-in numpy engine runs this model")
        return "numpy"

    # ------------------------------------------------------------ recognizer

    def choose_recognizer(self) -> tuple[str, str]:
        stt = self.settings.stt
        backend, model = stt.backend, stt.model
        if backend != "auto" or model != "auto":
            if backend == "auto":
                backend = ("vosk" if model.startswith("vosk-") or _is_vosk_folder(model)
                           else "whisper" if model.startswith("whisper-")
                           else "pocketsphinx")
            if model == "auto":
                model = {"pocketsphinx": POCKETSPHINX_MODEL,
                         "whisper": self._whisper_id()}.get(
                    backend, VOSK_MODELS.get(self.language, VOSK_MODELS["en"]))
            self.reasons["recognizer"] = "configured in [stt]"
            return backend, model
        wanted = self.tier_pick(self.tier.stt) if self.language in self.tier.stt else ""
        if not wanted:
            model = VOSK_MODELS.get(self.language, VOSK_MODELS["en"])
            self.reasons["recognizer"] = f"Vosk is the recognizer for {self.language!r}"
            return "vosk", model
        backend = self.catalog.get(wanted).engines[0]
        if backend == "whisper":
            why_not = self._whisper_blocker(wanted)
            if not why_not:
                self.reasons["recognizer"] = f"{wanted}, the {self.tier.name} tier's " \
                                             "recognizer (far fewer errors than PocketSphinx)"
                return "whisper", wanted
            self.reasons["recognizer"] = f"{wanted}: {why_not}, so PocketSphinx"
            return "pocketsphinx", POCKETSPHINX_MODEL
        if backend == "vosk" and not self.store.is_installed(wanted) and self.language == "en":
            self.to_install.append(wanted)
            self.reasons["recognizer"] = (f"{wanted} is not installed (hearth models install "
                                          f"{wanted}), so PocketSphinx")
            return "pocketsphinx", POCKETSPHINX_MODEL
        if not self.store.is_installed(wanted):
            self.to_install.append(wanted)
        self.reasons["recognizer"] = f"{wanted}, the {self.tier.name} tier's recognizer " \
                                     f"for {self.language!r}"
        return backend, wanted

    def _whisper_id(self) -> str:
        return next((e.id for e in self.catalog.of_kind("stt") if "whisper" in e.engines
                     and self.language in e.languages), "whisper-tiny.en")

    def _whisper_blocker(self, model_id: str) -> str:
        """Why Whisper cannot be the recognizer here ("" when it can)."""
        from engine.cpu import cpu_info

        if not _importable("faster_whisper"):
            return "faster-whisper is not installed (pip install 'hearth[whisper]')"
        if not self.store.is_installed(model_id):
            self.to_install.append(model_id)
            return f"not installed (hearth models install {model_id})"
        cores = cpu_info().physical_cores
        if cores < WHISPER_MIN_CORES:
            return f"{cores} CPU core is too slow for it"
        return ""

    # ------------------------------------------------------------ voice

    def choose_voice(self) -> tuple[str, str]:
        tts = self.settings.tts
        if not tts.enabled:
            self.reasons["voice"] = "spoken replies are off ([tts] enabled = false)"
            return "", ""
        backend, voice = tts.backend, tts.voice
        espeak = ESPEAK_VOICES.get(self.language, self.language)
        if backend != "auto" or voice != "auto":
            if backend == "auto":
                backend = "piper" if voice.startswith("piper-") or voice.endswith(".onnx") \
                    else "espeak-ng"
            if voice == "auto":
                voice = PIPER_VOICES.get(self.language, "") if backend == "piper" else espeak
                if not voice:
                    raise ModelNotInstalledError(
                        f"piper-{self.language}", f"there is no Piper voice for language "
                        f"{self.language!r} in the catalog; set [tts] voice to a .onnx file "
                        "or use espeak-ng")
            self.reasons["voice"] = "configured in [tts]"
            return backend, voice
        wanted = self.tier_pick(self.tier.tts) if self.language in self.tier.tts else ""
        if not wanted or wanted == "espeak-ng":
            self.reasons["voice"] = (f"the {self.tier.name} tier's voice: espeak-ng takes "
                                     "almost no memory" if wanted else
                                     f"espeak-ng speaks {self.language!r}")
            return "espeak-ng", espeak
        if not _importable("piper"):
            self.reasons["voice"] = "Piper is not installed (pip install 'hearth[piper]'), " \
                                    "so espeak-ng"
            return "espeak-ng", espeak
        if not self.store.is_installed(wanted):
            self.to_install.append(wanted)
            self.reasons["voice"] = f"{wanted} is not installed (hearth models install " \
                                    f"{wanted}), so espeak-ng"
            return "espeak-ng", espeak
        self.reasons["voice"] = f"{wanted}, the {self.tier.name} tier's voice"
        return "piper", wanted

    # ------------------------------------------------------------ numpy memory mode

    def choose_memory_mode(self, engine: str, entry: CatalogEntry | None,
                           path: Path | None, others: int) -> tuple[str, int]:
        """(mode, float32 weights budget for "auto") for `engine` in what `others` leave."""
        if engine == "remote":
            return "", 0
        if engine != "numpy":
            mapped = self.settings.engine.use_mmap
            self.reasons["memory_mode"] = ("llama.cpp maps the model file" if mapped else
                                           "llama.cpp reads the model file ([engine] "
                                           "use_mmap = false)")
            return ("mmap" if mapped else "read"), 0
        configured = self.settings.engine.memory_mode
        if configured != "auto":
            self.reasons["memory_mode"] = f"[engine] memory_mode = {configured!r}"
            return configured, 0
        left = self.budget - others
        for mode in ("cache", "mmap", "stream"):
            if engine_bytes(entry, engine, mode, path) <= left:
                break
        else:
            mode = "stream"
        float32 = engine_bytes(entry, engine, "cache", path) - NUMPY_EXTRA_BYTES
        if mode == "mmap":
            spare = left - engine_bytes(entry, engine, "mmap", path)
            if spare >= MIN_PARTIAL_CACHE_SHARE * float32:
                self.reasons["memory_mode"] = (
                    f"float32 weights need {format_bytes(float32)}; "
                    f"{format_bytes(spare)} of them are cached, the rest stays in the file")
                return "auto", spare
        self.reasons["memory_mode"] = {
            "cache": "the float32 weights fit beside the rest of the stack",
            "mmap": "float32 weights would not fit beside the rest of the stack; the "
                    "quantized file is used in place",
            "stream": "even the mapped file does not fit beside the rest of the stack: "
                      "weights are read one layer at a time",
        }[mode]
        return mode, 0


class _EverythingInstalled(ModelStore):
    """A store as it would be with every catalog model installed, for recommending."""

    def __init__(self, store: ModelStore) -> None:
        super().__init__(store.root, store.catalog)
        self._real = store

    def is_installed(self, model_id: str) -> bool:
        return _in_catalog(self.catalog, model_id)

    def path(self, model_id: str) -> Path:
        if self._real.is_installed(model_id):
            return self._real.path(model_id)
        return self.entry_dir(model_id) / self.catalog.get(model_id).path


def _in_catalog(catalog: Catalog, model_id: str) -> bool:
    return any(e.id == model_id for e in catalog.entries)


def _is_vosk_folder(value: str) -> bool:
    if not _looks_like_path(value):
        return False
    root = Path(value).expanduser()
    return (root / "am" / "final.mdl").exists() or (root / "final.mdl").exists()


def choose_stack(
    settings: Settings,
    store: ModelStore | None = None,
    memory: MachineMemory | None = None,
    *,
    engine: str | None = None,
    model: str | None = None,
    as_if_installed: bool = False,
) -> Stack:
    """The stack Hearth runs for `settings` on a machine with `memory` (this machine's,
    by default), with `engine` / `model` overriding the settings for one run.
    `as_if_installed`: the stack it would run with every catalog model installed (what
    `hearth models recommend` recommends; `to_install` then lists what is missing).

    Raises ModelNotInstalledError when no chat model is installed, and
    InsufficientMemoryError when not even the smallest way to run the chat model fits.
    """
    from app.models.tiers import detect_memory

    store = store or ModelStore(settings.data_dir / "models")
    memory = memory or detect_memory()
    real_store = store
    if as_if_installed:
        store = _EverythingInstalled(store)
    c = _Chooser(settings, store, memory, engine, model)
    backend, entry, path = c.choose_engine()
    recognizer, recognizer_model = c.choose_recognizer()
    voice, voice_model = c.choose_voice()
    catalog = store.catalog

    def speech() -> int:
        return recognizer_bytes(catalog, recognizer_model) + voice_bytes(catalog, voice,
                                                                          voice_model)

    kv = context_bytes(path, settings.engine.context_length, backend)
    smallest = "stream" if backend == "numpy" else "mmap"
    floor = RUNTIME_BYTES + kv + engine_bytes(entry, backend, smallest, path)
    configured_stt = settings.stt.backend != "auto" or settings.stt.model != "auto"
    configured_tts = settings.tts.backend != "auto" or settings.tts.voice != "auto"
    # lighter speech first, before the engine loses speed
    if floor + speech() > c.budget and voice == "piper" and not configured_tts:
        voice, voice_model = "espeak-ng", ESPEAK_VOICES.get(c.language, c.language)
        c.reasons["voice"] = (f"Piper would not fit in {format_bytes(c.budget)} with the "
                              "rest of the stack, so espeak-ng")
    if floor + speech() > c.budget and recognizer == "whisper" and not configured_stt:
        recognizer, recognizer_model = "pocketsphinx", POCKETSPHINX_MODEL
        c.reasons["recognizer"] = (f"Whisper would not fit in {format_bytes(c.budget)} with "
                                   "the rest of the stack, so PocketSphinx")
    others = RUNTIME_BYTES + speech()
    mode, weights_budget = c.choose_memory_mode(backend, entry, path, others + kv)
    engine_need = engine_bytes(entry, backend, mode, path) + kv
    if mode == "auto":
        engine_need += weights_budget
    # [cluster] workers (issue 17, app/cluster.py): the model's layers live on the workers.
    on_workers = bool(settings.cluster.workers) and backend in ("llama-cpp", "auto")
    if backend != "remote" and not on_workers and RUNTIME_BYTES + engine_need > c.budget:
        name = entry.id if entry else (path.name if path else "the model")
        raise InsufficientMemoryError(_not_enough(c, name, RUNTIME_BYTES + engine_need))
    c.reasons.setdefault("model", "")
    c.reasons = {k: c.reasons[k] for k in ("engine", "model", "memory_mode", "recognizer",
                                           "voice") if c.reasons.get(k)}
    c.reasons["memory"] = (f"{memory.describe()}: tier {c.tier.name!r}; the stack needs "
                           f"about {format_bytes(others + engine_need)} of "
                           f"{format_bytes(c.budget)}")
    template = settings.engine.chat_template or (entry.chat_template if entry else "")
    return Stack(
        engine=backend, model=entry.id if entry else (str(path) if path else ""),
        memory_mode=mode, recognizer=recognizer, recognizer_model=recognizer_model,
        voice=voice, voice_model=voice_model, reasons=c.reasons, tier=c.tier.name,
        budget_bytes=c.budget, needed_bytes=others + engine_need, engine_bytes=engine_need,
        weights_budget_bytes=weights_budget, model_path=path, chat_template=template,
        to_install=tuple(dict.fromkeys(
            [m for m in (entry.id if entry else "", recognizer_model, voice_model)
             if _in_catalog(catalog, m) and not real_store.is_installed(m)]
            if as_if_installed else c.to_install)),
    )


def _not_enough(c: _Chooser, name: str, needed: int) -> str:
    fitting = [e for e in c.catalog.of_kind("llm")
               if e.ram_bytes + RUNTIME_BYTES <= c.budget and c.language in e.languages]
    hint = ""
    if fitting:
        best = max(fitting, key=lambda e: e.ram_bytes)
        hint = f"; {best.id} fits (hearth models install {best.id}, then --model {best.id})"
    limit = f" under the {c.memory.limit_source}" if c.memory.limit_source else ""
    return (f"{name} needs {format_bytes(needed)} of memory with Hearth's runtime but only "
            f"{format_bytes(c.budget)} is available{limit}{hint}")


def choose_speech(settings: Settings, store: ModelStore | None = None,
                  memory: MachineMemory | None = None) -> Stack:
    """`choose_stack` for a recognizer or voice used on their own (`hearth transcribe`,
    `hearth say`): with no chat model that can run here, the speech is chosen as if the
    engine were elsewhere."""
    try:
        return choose_stack(settings, store, memory)
    except (ModelNotInstalledError, InsufficientMemoryError):
        return choose_stack(settings, store, memory, engine="remote")
