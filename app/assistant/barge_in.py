"""Barge-in by speech: whether what the microphone hears while Hearth speaks is a person
talking over it (so the reply is cancelled and a new turn listens), or Hearth's own
voice that the echo canceller let through.

Only on the sound server's echo-cancelled signal and with `[audio] barge_in = "speech"`.
`BargeInDetector` (speech/doubletalk.py) pauses the speaker at the first sign of speech
and confirms 250 ms of it, part heard with the speaker silent (an echo stops with its
sound); a reply that was only paused plays on. Not in a reply's first
`ECHO_SETTLE_SECONDS`; after a pause that was a leak, speech must be louder than the
leak for as long (`BargeInDetector`'s leak memory). The wake word is spotted by the
listen stage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from app.assistant.ears import Ears
from app.assistant.turn import Turn, Voice
from app.config import Settings
from speech.audio import AudioChunk
from speech.doubletalk import BargeInDetector, BargeInKind
from speech.io import AudioSink

log = logging.getLogger(__name__)

ECHO_SETTLE_SECONDS = 4.0
"""No barge-in by speech in a reply's first 4 s: a (re)started speaker stream makes
PulseAudio's canceller resynchronize, leaking Hearth's voice in bursts for up to 3.5 s
(bench/barge_in.py with no settling: 77 of 78 leaks came 0.14-3.5 s after the stream
started). The wake word still barges in then. Resuming after a pause restarts the stream
too; there the detector's leak memory keeps the bursts that follow from pausing again,
without making the reply deaf to a person (blind for 4 s after each such pause, 7 of 70
barge-ins were missed)."""
PAUSE_LIMIT_SECONDS = 2.0
"""A pause the detector has not ended by then (the microphone stopped delivering audio)
is lifted: the detector decides within about 0.8 s of audio."""


@runtime_checkable
class Pausable(Protocol):
    """A speaker that can hold its sound (`speech.devices.Speaker`)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class BargeInBySpeech:
    """Tells a person talking over Hearth's reply from the reply's own echo, pausing the
    speaker while it listens."""

    def __init__(self, settings: Settings, ears: Ears, sample_rate: Callable[[], int],
                 speaker: Callable[[], AudioSink | None]) -> None:
        self.settings = settings
        self._ears = ears
        self._sample_rate = sample_rate
        self._speaker = speaker
        self._detector: BargeInDetector | None = None
        self._built = False
        self._answering: Turn | None = None
        """The turn last heard (a new one resets the detector)."""
        self._speaking_since: float | None = None
        """When `_answering` was first heard speaking."""
        self._paused: Pausable | None = None
        """The speaker this paused (and must resume unless the reply is cancelled)."""
        self._pause_count = 0
        """Pauses so far (each has its own time limit)."""
        self.pauses = 0
        """Pauses that did not end in a barge-in (resumed replies)."""

    def hear(self, chunk: AudioChunk, current: Turn | None, echo_cancelled: bool,
             waiting_seconds: float = 0.0) -> AudioChunk | None:
        """Feed audio heard while `current` is answered (`waiting_seconds`: how much more
        is queued behind it); the speech so far (pre-roll included) when a person barges
        in, else None."""
        detector = self._need_detector() if echo_cancelled and self.enabled else None
        if detector is None:
            return None
        if self._answering is not current:
            self._answering, self._speaking_since = current, None
            self._restart(detector)
        if current is not None and current.voice is Voice.SPEAKING:
            self._speaking_since = self._speaking_since or time.monotonic()
            if self._settling():
                self._restart(detector)
                return None
        for event in detector.process(chunk):
            if event.kind is BargeInKind.ONSET:
                log.debug("barge-in: speech? pausing (%.1f s into the reply, %.2f s after "
                          "the speaker started)", self._into_reply(), self._since_start())
                # (not while thinking: a stream stopped while idle resynchronizes the canceller)
                if current is not None and current.voice is Voice.SPEAKING:
                    self._pause()
                    detector.drain_longer(waiting_seconds)  # recorded before the pause
            elif event.kind is BargeInKind.RELEASED:
                self.pauses += 1
                log.info("barge-in: not speech, the reply plays on (%.1f s into it)",
                         self._into_reply())
                self._resume()
            elif event.audio is not None:
                self._paused = None  # the caller's new turn stops the speaker
                log.info("barge-in: %.2f s of speech over the reply (%.1f s into it)",
                         event.speech_seconds, self._into_reply())
                return event.audio
        return None

    @property
    def enabled(self) -> bool:
        """Speech may barge in (`[audio] barge_in`)."""
        return self.settings.audio.barge_in == "speech"

    def _restart(self, detector: BargeInDetector) -> None:
        detector.reset()
        self._resume()

    def _pause(self) -> None:
        speaker = self._speaker()
        if not isinstance(speaker, Pausable):
            return
        speaker.pause()
        self._paused = speaker
        self._pause_count += 1
        lift = threading.Timer(PAUSE_LIMIT_SECONDS, self._lift, args=(self._pause_count,))
        lift.daemon = True
        lift.start()

    def _lift(self, pause: int) -> None:
        """A pause nothing ended (no more audio came): the reply plays on. (Not a later
        pause of the same speaker: that one has its own time limit.)"""
        if self._paused is not None and self._pause_count == pause:
            log.warning("barge-in: no audio to decide on; the reply plays on")
            self._resume()

    def _resume(self) -> None:
        speaker, self._paused = self._paused, None
        if speaker is not None:
            speaker.resume()

    def _since_start(self) -> float:
        """Seconds since the speaker's stream last (re)started, or since the reply began
        to speak on a speaker that does not say."""
        started = getattr(self._speaker(), "started_at", None) or self._speaking_since
        return time.monotonic() - started if started else 0.0

    def _settling(self) -> bool:
        """In the reply's first `ECHO_SETTLE_SECONDS`, while the canceller settles."""
        return self._into_reply() < ECHO_SETTLE_SECONDS

    def _into_reply(self) -> float:
        return time.monotonic() - (self._speaking_since or time.monotonic())

    def _need_detector(self) -> BargeInDetector | None:
        if not self._built:
            self._built = True
            self._detector = self._ears.barge_in(self._sample_rate())
        return self._detector
