"""Owns the assistant for the window: builds it off the GUI thread, wires it, shuts it down.

Loading a model can take seconds, so `AssistantSession.load` runs the factory on a
worker thread and reports back with queued signals; the window shows a busy state
meanwhile. A reload (after the settings changed) bumps a generation number, so a
slow, outdated load is shut down instead of replacing a newer one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.config import Settings
from app.errors import HearthError
from app.gui.bridge import AssistantLike, EventBridge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionInfo:
    """What the status bar and the controls need to know about a loaded assistant."""

    engine: str
    """Backend name, e.g. "llama-cpp"."""
    model: str
    """Catalog id or file name of the chat model."""
    ram_tier: str = ""
    """This machine's RAM tier as the model catalog names it."""
    speech: str = ""
    """Recognizer and voice in use, e.g. "pocketsphinx, espeak-ng"."""
    why: str = ""
    """Why this stack (app.stack.Stack.explain()), for the status bar's tooltip."""
    has_microphone: bool = True
    """False: typing is the only input, push-to-talk is disabled."""
    speaks: bool = True
    notices: tuple[str, ...] = ()
    """Things to tell the user once (e.g. "no microphone found")."""


AssistantFactory = Callable[[Settings], tuple[AssistantLike, SessionInfo]]
"""Builds and returns an assistant that is not started yet (runs on a worker thread)."""


def describe_error(exc: BaseException) -> str:
    """One sentence for a banner; our own typed errors already carry one."""
    from engine.errors import EngineError
    from speech.errors import SpeechError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, HearthError | EngineError | SpeechError):
        return text
    return f"Hearth could not start the assistant ({text}); see the log for details."


class AssistantSession(QObject):
    """The current assistant, if loaded; all blocking work happens on worker threads."""

    loading = Signal(str)
    """A load started; the text says what is loading."""
    ready = Signal(object)
    """A `SessionInfo`: the assistant is started and subscribed to the bridge."""
    failed = Signal(str)
    """Loading failed; one sentence for the user."""

    _loaded = Signal(object, object, int)
    _load_failed = Signal(str, int)

    def __init__(self, factory: AssistantFactory, bridge: EventBridge,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._factory = factory
        self._bridge = bridge
        self._assistant: AssistantLike | None = None
        self._info: SessionInfo | None = None
        self._generation = 0
        self._closed = False
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        queued = Qt.ConnectionType.QueuedConnection
        self._loaded.connect(self._on_loaded, queued)
        self._load_failed.connect(self._on_load_failed, queued)

    @property
    def assistant(self) -> AssistantLike | None:
        """The running assistant, or None while loading (or after a failed load)."""
        return self._assistant

    @property
    def info(self) -> SessionInfo | None:
        return self._info

    @property
    def is_loading(self) -> bool:
        return any(t.is_alive() for t in self._workers)

    def load(self, settings: Settings) -> None:
        """Build a new assistant from `settings` in the background, replacing the current one."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        old, self._assistant, self._info = self._assistant, None, None
        if old is not None:
            self._shutdown_in_background(old)
        self.loading.emit("Loading the model…")
        worker = threading.Thread(target=self._build, args=(settings, generation),
                                  name="hearth-gui-load", daemon=True)
        self._workers = [t for t in self._workers if t.is_alive()] + [worker]
        worker.start()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel the turn in progress and stop the assistant (blocks at most ~`timeout`)."""
        with self._lock:
            self._closed = True
            self._generation += 1
        assistant, self._assistant = self._assistant, None
        if assistant is None:
            return
        _release(assistant, timeout)

    def _build(self, settings: Settings, generation: int) -> None:
        try:
            self._load(settings, generation)
        except RuntimeError as exc:
            if "deleted" not in str(exc):  # only "the window is gone" is expected here
                raise
            log.debug("the window closed while loading")

    def _load(self, settings: Settings, generation: int) -> None:
        try:
            assistant, info = self._factory(settings)
        except Exception as exc:
            log.warning("loading the assistant failed", exc_info=True)
            self._load_failed.emit(describe_error(exc), generation)
            return
        with self._lock:
            stale = self._closed or generation != self._generation
        if stale:
            _release(assistant, 2.0)
            return
        try:
            assistant.subscribe(self._bridge.publish)
            assistant.start()
        except Exception as exc:
            log.warning("starting the assistant failed", exc_info=True)
            self._load_failed.emit(describe_error(exc), generation)
            return
        self._loaded.emit(assistant, info, generation)

    @Slot(object, object, int)
    def _on_loaded(self, assistant: AssistantLike, info: SessionInfo, generation: int) -> None:
        if self._closed or generation != self._generation:
            self._shutdown_in_background(assistant)
            return
        self._assistant, self._info = assistant, info
        self.ready.emit(info)

    @Slot(str, int)
    def _on_load_failed(self, text: str, generation: int) -> None:
        if generation == self._generation and not self._closed:
            self.failed.emit(text)

    def _shutdown_in_background(self, assistant: AssistantLike) -> None:
        threading.Thread(target=_release, args=(assistant, 2.0), name="hearth-gui-unload",
                         daemon=True).start()


def _release(assistant: AssistantLike, timeout: float) -> None:
    """Cancel, stop and close an assistant: its audio streams and models are released
    here, not left to the garbage collector (PortAudio would call into freed code)."""
    try:
        assistant.cancel()
        assistant.shutdown(timeout=timeout)
        close = getattr(assistant, "close", None)
        if close is not None:
            close()
    except Exception:  # closing must never hang or crash the app
        log.exception("assistant shutdown failed")
