"""The supervisor: runs each stage loop on its own thread and keeps the app up when one
fails.

An unexpected exception in a stage is logged with its traceback and reported as an
`ErrorEvent`; the turn that stage was working on is closed, the component is rebuilt
(from its factory when there is one) and the loop runs again. A failing voice degrades
to text-only replies; a microphone that fails is reopened with back-off (1, 2, 4, 5,
5, ... s) when a factory is given, and its return is told with a `Notice`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from app.assistant.frames import Stop
from app.assistant.listen import ListenStage
from app.assistant.reply import ReplyStage
from app.assistant.stage import Stage, Stages
from app.assistant.turn import Turn, TurnLedger
from app.assistant.voice import VoiceStage
from app.config import Settings
from app.events import Code, ErrorEvent, Event, Notice, State
from engine.errors import EngineError
from speech.errors import SpeechError
from speech.io import AudioSource

log = logging.getLogger(__name__)

FAILURE_PAUSE_SECONDS = 0.2
"""Pause before a failed stage's loop restarts, so a permanent fault cannot spin a core."""
CLOSE_WAIT_SECONDS = 30.0
"""Closing waits this long for each stage thread to leave its component."""
MIC_RETRY_FIRST_SECONDS = 1.0
MIC_RETRY_MAX_SECONDS = 5.0
"""A lost microphone is reopened at once, then after 1, 2, 4, 5, 5, ... s until it works."""


class Supervisor:
    """Spawns and watches the stage threads. `interrupt(turn)` cancels a turn the way
    the Stop button does; `tell_once(code, text)` sends a Notice once."""

    def __init__(self, settings: Settings, ledger: TurnLedger, stages: Stages,
                 listen: ListenStage, reply: ReplyStage, voice: VoiceStage, *,
                 emit: Callable[[Event], None], tell_once: Callable[[Code, str], None],
                 interrupt: Callable[[Turn], None]) -> None:
        self.settings = settings
        self.ledger = ledger
        self.stages = stages
        self.listen = listen
        self.reply = reply
        self.voice = voice
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._emit = emit
        self._tell_once = tell_once
        self._interrupt = interrupt

    def start(self) -> None:
        """Start every stage thread (and the microphone, or the wait for one)."""
        s, spawn = self.stages, self.spawn
        spawn("listen", self.listen.run, lambda: self.listen.part)
        spawn("engine", self.reply.run, lambda: s.engine)
        spawn("synthesizer", self.voice.run_synthesis, lambda: s.synthesizer)
        spawn("speaker", self.voice.run_playback, lambda: s.speaker)
        if s.microphone.component is not None:
            spawn("microphone", self.capture, lambda: s.microphone)
        elif s.microphone.factory is not None and s.recognizer.component is not None:
            # e.g. a Pi's service started before its USB microphone appeared: keep looking
            self._tell_once(Code.NO_MICROPHONE, "No microphone is available yet; Hearth "
                            "takes typed questions and listens as soon as one appears.")
            spawn("microphone", self.wait_for_microphone, lambda: s.microphone)
        else:
            self._tell_once(Code.NO_MICROPHONE, "No microphone is available, so Hearth takes "
                            "typed questions only.")
        if not self.voice.output and self.settings.tts.enabled:
            self._tell_once(Code.NO_SPEECH_OUTPUT, "No speaker or voice is available, so "
                            "replies are shown as text only.")

    def stop(self, deadline: float) -> None:
        """Tell every stage loop to end; wait for them until `deadline` (monotonic)."""
        self.stopping.set()
        self.listen.q.put(Stop())
        self.reply.q.put(Stop())
        self.voice.stop()
        microphone = self.stages.microphone.component
        if microphone is not None:
            with contextlib.suppress(Exception):
                microphone.stop()
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def release(self, wait_seconds: float = CLOSE_WAIT_SECONDS) -> None:
        """Close every component (and the skills), each once its thread has left it (up
        to `wait_seconds` per thread): a slow engine call ends at its next cancel check,
        and freeing a model under it would crash."""
        for thread in self.threads:
            thread.join(wait_seconds)
        running = {t.name for t in self.threads if t.is_alive()}
        for stage in self.stages.in_closing_order():
            if f"hearth-{stage.thread}" in running:
                log.warning("the %s is still busy; not closing it", stage.name)
            elif stage.component is not None:
                try:
                    stage.component.close()
                except Exception:  # one stage failing to close must not keep the others
                    log.exception("closing the %s failed", stage.name)
        if self.reply.skills is not None and "hearth-engine" not in running:
            self.reply.skills.close()

    def spawn(self, name: str, body: Callable[[], None], blame: Callable[[], Stage[Any]]) -> None:
        """Run `body` on thread `hearth-<name>`; a failure is blamed on `blame()`."""
        thread = threading.Thread(target=self._supervise, args=(body, blame),
                                  name=f"hearth-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _supervise(self, body: Callable[[], None], blame: Callable[[], Stage[Any]]) -> None:
        """Run a stage loop; when it raises, report, repair and run it again."""
        while not self.stopping.is_set():
            try:
                body()
                return
            except Exception as exc:
                stage = blame()
                log.exception("the %s stage failed", stage.name)
                self._failed(stage, reason(exc))
                time.sleep(FAILURE_PAUSE_SECONDS)

    def _failed(self, stage: Stage[Any], why: str) -> None:
        if stage.thread == "listen":
            self.listen.failed()
        turn, stage.busy = stage.busy, None
        if stage in (self.stages.synthesizer, self.stages.speaker):
            # the reply goes on as text; the voice comes back only if it can be rebuilt
            if stage.rebuild() is None:
                self.voice.output = False
                self._tell_once(Code.TTS_FAILED, f"{stage.words} failed ({why}), so replies "
                                                 "are shown as text only from now on.")
            else:
                self._emit(ErrorEvent(f"{stage.words} failed ({why}) and was restarted; "
                                      "this reply continues as text.", stage.code))
            if turn is not None:
                self.voice.mute(turn)
            return
        if stage is self.stages.microphone:
            self._microphone_failed(why)
            return
        self._emit(ErrorEvent(f"{stage.words} failed ({why}); it was restarted, please try "
                              "again.", stage.code))
        if turn is not None:
            self.ledger.finish(turn, interrupted=True, error=why)
        stage.rebuild()

    # ---- the microphone --------------------------------------------------------------

    def capture(self) -> None:
        """The microphone thread's body: capture from the microphone there is."""
        self.listen.capture(self.stopping)

    def wait_for_microphone(self) -> None:
        """There was no microphone at start: open one as soon as it appears (with the
        wake-word spotter it enables), then capture from it."""
        if self.stages.microphone.component is None:  # (a later failure reopened it)
            self._reopen_microphone(failed_already=True)
            if self.stages.microphone.component is None:  # shut down while waiting
                return
        if self.stages.wake.component is None and self.settings.wake.enabled:
            self.stages.wake.rebuild()
        self.capture()

    def _microphone_failed(self, why: str) -> None:
        """End the turn it was hearing, go on with typed questions and, with a factory,
        reopen it (on this, the microphone's thread) until it works."""
        microphone = self.stages.microphone
        self._emit(ErrorEvent(f"The microphone failed ({why}); you can type your questions "
                              "meanwhile.", microphone.code))
        with self.ledger.lock:
            current = self.ledger.current
            broken, microphone.component = microphone.component, None
        if current is not None and self.ledger.state == State.LISTENING:
            self._interrupt(current)
        if broken is not None:
            with contextlib.suppress(Exception):
                broken.close()
        if microphone.factory is None:
            self._tell_once(Code.NO_MICROPHONE, "The microphone stopped working, so Hearth "
                                                "takes typed questions only.")
            return
        self._reopen_microphone()

    def _reopen_microphone(self, failed_already: bool = False) -> None:
        """Open and start a fresh microphone, retrying with back-off until it works or
        Hearth shuts down; a `Notice` tells when it is back after failed attempts."""
        microphone = self.stages.microphone
        assert microphone.factory is not None
        failures = int(failed_already)
        delay = MIC_RETRY_FIRST_SECONDS if failed_already else 0.0
        while not self.stopping.wait(delay):
            fresh: AudioSource | None = None
            try:
                fresh = microphone.factory()
                fresh.start()
            except Exception as exc:
                if fresh is not None:
                    with contextlib.suppress(Exception):
                        fresh.close()
                failures += 1
                # one line for the outage, not one per attempt
                (log.warning if failures == 1 else log.debug)(
                    "the microphone cannot be opened (%s); trying again every few seconds",
                    reason(exc))
                delay = min(MIC_RETRY_MAX_SECONDS, max(MIC_RETRY_FIRST_SECONDS, 2 * delay))
                continue
            with self.ledger.lock:
                if self.ledger.closing:
                    fresh.close()
                    return
                self.listen.started_microphone = fresh
                microphone.component = fresh
            log.info("the microphone is open again (after %d failed attempt(s))", failures)
            if failures:
                self._emit(Notice("The microphone is back; you can speak again.",
                                  Code.MICROPHONE_BACK))
            return


def reason(exc: BaseException) -> str:
    """One line saying what went wrong (typed errors speak for themselves)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, EngineError | SpeechError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
