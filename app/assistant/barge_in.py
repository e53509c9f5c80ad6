"""Barge-in by speech: whether what the microphone hears while Hearth speaks is a person
talking over it (so the reply is cancelled and a new turn listens), or Hearth's own
voice that the echo canceller let through.

Only on the sound server's echo-cancelled signal and with `[audio] barge_in = "speech"`:
Silero VAD must confirm 250 ms of speech (`build_barge_in_detector`), and not in a
reply's first `ECHO_SETTLE_SECONDS`. The wake word is spotted by the listen stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.assistant.ears import Ears
from app.assistant.turn import Turn, Voice
from app.config import Settings
from speech.audio import AudioChunk
from speech.vad import Endpointer, VadEventKind

log = logging.getLogger(__name__)

ECHO_SETTLE_SECONDS = 2.5
"""No barge-in by speech in a reply's first 2.5 s: a (re)started speaker stream makes
PulseAudio's canceller resynchronize, leaking Hearth's voice up to 2 s in
(bench/barge_in.py). The wake word still barges in then."""


class BargeInBySpeech:
    """Tells a person talking over Hearth's reply from the reply's own echo."""

    def __init__(self, settings: Settings, ears: Ears, sample_rate: Callable[[], int]) -> None:
        self.settings = settings
        self._ears = ears
        self._sample_rate = sample_rate
        self._detector: Endpointer | None = None
        self._built = False
        self._answering: Turn | None = None
        """The turn last heard (a new one resets the detector)."""
        self._speaking_since: float | None = None
        """When `_answering` was first heard speaking."""

    def hear(self, chunk: AudioChunk, current: Turn | None, echo_cancelled: bool
             ) -> AudioChunk | None:
        """Feed audio heard while `current` is answered; the speech so far (pre-roll
        included) when a person barges in, else None."""
        detector = self._need_detector() if echo_cancelled and self.enabled else None
        if detector is None:
            return None
        if self._answering is not current:
            self._answering, self._speaking_since = current, None
            detector.reset()
        if current is not None and current.voice is Voice.SPEAKING:
            now = time.monotonic()
            self._speaking_since = self._speaking_since or now
            if now - self._speaking_since < ECHO_SETTLE_SECONDS:
                detector.reset()
                return None
        for event in detector.process(chunk):
            if event.kind == VadEventKind.SPEECH_START:
                log.info("barge-in: %.2f s of speech over the reply (%.1f s into it)",
                         event.audio.seconds, time.monotonic() - (self._speaking_since or 0.0))
                return event.audio
        return None

    @property
    def enabled(self) -> bool:
        """Speech may barge in (`[audio] barge_in`)."""
        return self.settings.audio.barge_in == "speech"

    def _need_detector(self) -> Endpointer | None:
        if not self._built:
            self._built = True
            self._detector = self._ears.barge_in(self._sample_rate())
        return self._detector
