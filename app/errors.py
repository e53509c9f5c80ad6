"""Typed errors of the application layer, each with one sentence for a person.

The CLI, the GUI and the pipeline turn these (and `engine.errors.EngineError`,
`speech.errors.SpeechError`) into a message plus what to do; nothing below the
boundary prints or exits.
"""


class HearthError(Exception):
    """Base class of the application's own errors."""


class ConfigError(HearthError):
    """The configuration file is unreadable or has a bad key or value."""


class CatalogError(HearthError):
    """The model catalog is malformed or names an unknown model."""


class ModelNotInstalledError(HearthError):
    """A model the settings ask for is not in the store."""

    def __init__(self, model_id: str, message: str = "") -> None:
        self.model_id = model_id
        super().__init__(
            message or f"model {model_id!r} is not installed; run: hearth models install {model_id}"
        )


class DownloadError(HearthError):
    """Every source of a model failed (each source's reason is in the message)."""


class ChecksumError(DownloadError):
    """A downloaded or installed file does not have the catalog's sha256."""


class InsufficientMemoryError(HearthError):
    """A model needs more memory than this machine (or its limit) has available."""


class HistoryError(HearthError):
    """The conversation history database could not be read or written."""
