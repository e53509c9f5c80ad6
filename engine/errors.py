"""Typed errors raised by the inference backends.

Each carries one sentence meant for a person; the application boundary (CLI, GUI,
pipeline) adds what to do about it.
"""


class EngineError(Exception):
    """Base class of every error raised by `engine`."""


class ModelFormatError(EngineError):
    """A model or tokenizer file is malformed, truncated or of an unsupported kind."""


class EngineUnavailableError(EngineError):
    """A backend's optional dependency is not installed (the message names the extra)."""


class RemoteEngineError(EngineError):
    """A remote (LAN) inference server could not be reached or answered badly."""


class ContextOverflowError(EngineError):
    """A prompt does not fit the model's context window even after trimming history."""
