"""Double talk: a person talking over Hearth's voice, told from Hearth's own voice that
the echo canceller let through.

PulseAudio's canceller now and then leaks bursts of the speaker's sound, which any VAD
takes for speech; and while it hears both (double talk) it suppresses much of the
person's voice too, so waiting for 250 ms of speech over the reply took 0.4-0.7 s and
sometimes never came. `BargeInDetector` therefore pauses first and listens second:

A window counts as speech when Silero says so and it is loud: `min_rms` and
`floor_ratio` times the quiet level of the last 3 s (Silero's recurrent state keeps
calling digital silence speech for ~150 ms after a sound stops, and it hears leaked
echo far below what a person talking sounds like).

1. ONSET: 2 of 3 consecutive 32 ms windows that count as speech. The caller pauses
   the speaker at once (`Speaker.pause`): if it was the person, stopping the reply is
   what they wanted; if it was an echo, the echo stops with it.
2. After `drain_ms` of audio (what was already on its way from the speaker through the
   room, the canceller and the capture buffers; the caller adds what waited for it in
   its own queue with `drain_longer`), speech must go on while the speaker is
   silent: `after_pause_ms` of speech windows, and `confirm_ms` (250) in all since the
   onset. Then CONFIRMED (the caller cancels the reply) with the speech so far, pre-roll
   included, for the recognizer.
3. Otherwise RELEASED once `release_ms` after the drain pass without a voiced window, or
   `listen_ms` without confirmation: the caller resumes the reply.
4. A leak comes in bursts (the canceller resynchronizes for seconds after the speaker's
   stream restarts, as it does on resuming), so for `leak_memory_ms` after a release a
   window counts as loud only at `leak_ratio` times the loudest window of the burst that
   was released: a person talking over the reply stands well above what leaks of it.

An echo cannot outlast the sound it echoes, so a leak costs a short pause, never the
reply. The detector works on audio time only (no clock), so it can be tested on files.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass

import numpy as np

from speech.audio import AudioChunk
from speech.vad import FrameClassifier, SileroClassifier

FLOOR_SECONDS = 3.0
"""The quiet level is the 10th percentile of the last this many seconds' window levels."""


class BargeInKind(enum.Enum):
    ONSET = "onset"
    """Probable speech: pause the speaker."""
    CONFIRMED = "confirmed"
    """Speech went on with the speaker silent: cancel the reply, listen."""
    RELEASED = "released"
    """It was not speech (or it was Hearth's echo): resume the reply."""


@dataclass(frozen=True)
class BargeInEvent:
    kind: BargeInKind
    stream_seconds: float
    """Position in the audio fed since the last reset."""
    audio: AudioChunk | None = None
    """CONFIRMED: pre-roll plus the speech so far."""
    speech_seconds: float = 0.0
    """CONFIRMED: voiced audio counted since the onset."""


class BargeInDetector:
    """Streaming: `process(chunk)` returns the ONSET / CONFIRMED / RELEASED events it
    caused. After CONFIRMED it stays quiet until `reset()`."""

    def __init__(self, classifier: SileroClassifier | FrameClassifier, *,
                 onset_windows: int = 2, onset_span: int = 3, confirm_ms: int = 250,
                 drain_ms: int = 160, after_pause_ms: int = 64, release_ms: int = 192,
                 listen_ms: int = 600, pre_roll_ms: int = 300, min_rms: float = 60.0,
                 floor_ratio: float = 4.0, leak_memory_ms: int = 4000,
                 leak_ratio: float = 1.5) -> None:
        """`min_rms`: int16 RMS below which a window is never speech (60: -55 dBFS)."""
        self._classifier = classifier
        self._min_rms = min_rms
        self._floor_ratio = floor_ratio
        self.sample_rate = classifier.sample_rate
        self._frame = classifier.frame_samples
        frame_ms = classifier.frame_ms
        self._onset_windows = onset_windows
        self._onset_span = max(onset_span, onset_windows)
        self._confirm = max(1, round(confirm_ms / frame_ms))
        self._drain = round(drain_ms / frame_ms)
        self._after = max(1, round(after_pause_ms / frame_ms))
        self._release = max(1, round(release_ms / frame_ms))
        self._listen = max(self._after, round(listen_ms / frame_ms))
        self._pre_roll = round(pre_roll_ms / frame_ms)
        self._frame_ms = frame_ms
        self._leak_memory = round(leak_memory_ms / frame_ms)
        self._leak_ratio = leak_ratio
        self._levels: collections.deque[float] = collections.deque(
            maxlen=round(FLOOR_SECONDS * 1000 / frame_ms))
        self.reset()

    def reset(self) -> None:
        """Forget everything (the caller resumes a paused speaker itself)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._before: collections.deque[np.ndarray] = collections.deque(
            maxlen=self._pre_roll + self._onset_span)
        self._recent: collections.deque[bool] = collections.deque(maxlen=self._onset_span)
        self._recent_levels: collections.deque[float] = collections.deque(
            maxlen=self._onset_span)
        """The levels of `_recent`'s windows that count as speech (0 for the others)."""
        self._held: list[np.ndarray] | None = None
        """Audio since the onset (pre-roll first) while paused; None when not paused."""
        self._voiced = 0
        self._extra_drain = 0
        self._since_onset = 0
        self._voiced_after = 0
        self._quiet_after = 0
        self._confirmed = False
        self._frames_seen = 0
        self._burst_peak = 0.0
        """The loudest window counted as speech since the onset."""
        self._leak_level = 0.0
        """The loudest window of the burst last released (a leak), while remembered."""
        self._leak_left = 0
        if isinstance(self._classifier, SileroClassifier):
            self._classifier.reset()

    @property
    def paused(self) -> bool:
        """Between ONSET and CONFIRMED / RELEASED."""
        return self._held is not None

    def drain_longer(self, seconds: float) -> None:
        """After ONSET: `seconds` more audio was recorded before the pause than the
        capture buffers hold (it waited in the caller's queue)."""
        self._extra_drain = round(seconds * 1000 / self._frame_ms)

    def process(self, chunk: AudioChunk) -> list[BargeInEvent]:
        chunk.expect(self.sample_rate, consumer="the barge-in detector")
        if self._confirmed:
            return []
        self._pending = np.concatenate([self._pending, chunk.samples])
        events: list[BargeInEvent] = []
        offset = 0
        while len(self._pending) - offset >= self._frame and not self._confirmed:
            frame = self._pending[offset:offset + self._frame]
            offset += self._frame
            rms = self._rms(frame)  # (all always: the floor and Silero need every window)
            loud = rms >= self._threshold(rms)
            event = self._step(frame, self._classifier.is_speech(frame) and loud, rms)
            if event is not None:
                events.append(event)
        self._pending = self._pending[offset:].copy()
        return events

    @staticmethod
    def _rms(frame: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.square(frame.astype(np.float64)))))

    def _threshold(self, rms: float) -> float:
        """The level a window must reach to count as speech (`rms`: this window's, which
        joins the quiet level's history after)."""
        floor = float(np.percentile(self._levels, 10)) if self._levels else 0.0
        self._levels.append(rms)
        threshold = max(self._min_rms, self._floor_ratio * floor)
        if self._leak_left > 0:
            self._leak_left -= 1
            threshold = max(threshold, self._leak_ratio * self._leak_level)
        return threshold

    def _step(self, frame: np.ndarray, voiced: bool, rms: float) -> BargeInEvent | None:
        self._frames_seen += 1
        if self._held is None:
            self._before.append(frame)
            self._recent.append(voiced)
            self._recent_levels.append(rms if voiced else 0.0)
            if sum(self._recent) < self._onset_windows:
                return None
            self._held = list(self._before)
            self._voiced = sum(self._recent)
            self._burst_peak = max(self._recent_levels)
            self._since_onset = self._voiced_after = self._quiet_after = 0
            self._extra_drain = 0
            self._before.clear()
            self._recent.clear()
            self._recent_levels.clear()
            return BargeInEvent(BargeInKind.ONSET, self._seconds())
        self._held.append(frame)
        self._since_onset += 1
        self._voiced += voiced
        if voiced:
            self._burst_peak = max(self._burst_peak, rms)
        drain = self._drain + self._extra_drain
        if self._since_onset > drain:  # what the speaker said before the pause is in
            self._voiced_after += voiced
            self._quiet_after = 0 if voiced else self._quiet_after + 1
            if self._voiced >= self._confirm and self._voiced_after >= self._after:
                self._confirmed = True
                audio = AudioChunk(np.concatenate(self._held), self.sample_rate)
                self._held = None
                return BargeInEvent(BargeInKind.CONFIRMED, self._seconds(), audio,
                                    speech_seconds=round(self._voiced * self._frame_ms / 1000,
                                                         3))
            if (self._quiet_after >= self._release
                    or self._since_onset - drain >= self._listen):
                self._held = None
                self._leak_level, self._leak_left = self._burst_peak, self._leak_memory
                return BargeInEvent(BargeInKind.RELEASED, self._seconds())
        return None

    def _seconds(self) -> float:
        return round(self._frames_seen * self._frame_ms / 1000, 3)
