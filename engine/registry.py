"""Find an inference backend by name, importing its heavy dependencies only when asked."""

from __future__ import annotations

import importlib

from engine.base import ChatEngine, EngineConfig
from engine.errors import EngineError, EngineUnavailableError

# name -> (module, class, the pip extra that provides its dependency)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "numpy": ("engine.numpy_runner.engine", "NumpyChatEngine", ""),
    "llama-cpp": ("engine.llama_cpp", "LlamaCppEngine", "llama"),
    "remote": ("engine.remote", "RemoteChatEngine", ""),
}


def is_available(name: str) -> bool:
    """True when the backend's module and its dependencies import."""
    try:
        _load_class(name)
    except EngineError:
        return False
    return True


def _load_class(name: str) -> type[ChatEngine]:
    try:
        module_name, class_name, extra = BACKENDS[name]
    except KeyError:
        raise EngineError(
            f"unknown engine {name!r}; choose one of: {', '.join(BACKENDS)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" (pip install 'hearth[{extra}]')" if extra else ""
        raise EngineUnavailableError(
            f"the {name} engine needs a package that is not installed: {exc.name or exc}{hint}"
        ) from exc
    return getattr(module, class_name)


def create_engine(name: str, config: EngineConfig) -> ChatEngine:
    """Load `config.model_path` (or connect, for "remote") with the backend `name`."""
    return _load_class(name)(config)
