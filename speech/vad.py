"""Voice activity detection and endpointing: when an utterance starts and ends.

Two frame classifiers: `SileroClassifier` (every 32 ms window scored by Silero VAD)
and `FrameClassifier` (WebRTC's VAD on 30 ms frames plus an energy gate that rejects
quiet frames it would still call speech: the fallback without Silero or off 16 kHz,
and what `trim_silence` uses). Neither gates Silero: skipping its windows ruins it (see
`SileroClassifier`). Speech starts after `start_speech_ms` of voiced frames and
keeps `pre_roll_ms` of audio from before (so the first syllable is not clipped); it
ends after `end_silence_ms` of silence or at `max_utterance_seconds`, or after only
`quick_end_silence_ms` of quiet while the caller says what was heard is a complete
request (`Endpointer.complete`, e.g. from the recognizer's transcript so far). Quiet
there also counts windows far softer than the utterance's loudest (`QUIET_LEVEL`):
Silero's recurrent state keeps calling the fading end of a word speech for 0.1-0.3 s. `trim_silence`
applies the WebRTC classification to a finished push-to-talk recording.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass

import numpy as np
import webrtcvad

from speech.audio import AudioChunk
from speech.errors import AudioFormatError
from speech.silero_vad import SILERO_RATE, WINDOW_SAMPLES, SileroVad, silero_available

VAD_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = 30
"""WebRTC frame length; Silero's is 32 ms."""
VAD_ENGINES = ("auto", "silero", "webrtc")
SILERO_END_MARGIN = 0.15
"""Hysteresis: inside speech a window stays voiced down to threshold - this (Silero's own
rule), so a soft syllable does not end the utterance."""
QUIET_LEVEL = 0.1
"""A window whose RMS is under this fraction of the utterance's loudest is quiet."""
_KEEP_AFTER_SPEECH_MS = 150  # trailing silence kept on an utterance: words fade out slowly


class VadEventKind(enum.Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"


@dataclass(frozen=True)
class VadEvent:
    kind: VadEventKind
    stream_seconds: float
    """Position in the audio fed since the last reset where this happened."""
    audio: AudioChunk
    """START: pre-roll plus the speech so far; END: the whole utterance (pre-roll
    included, trailing silence beyond 150 ms trimmed)."""
    truncated: bool = False
    """END only: cut at max_utterance_seconds rather than by silence."""
    speech_seconds: float = 0.0
    """Where the speech itself began (START: before the voiced run that confirmed it) or
    ended (END: before the silence that ended it), same clock as `stream_seconds`."""


def _rms(frame: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(frame.astype(np.float32) / 32768.0))))


class FrameClassifier:
    """Speech / not speech for one 30 ms frame: WebRTC VAD and an RMS energy gate."""

    def __init__(self, sample_rate: int = 16000, aggressiveness: int = 2,
                 energy_threshold: float = 0.005) -> None:
        if sample_rate not in VAD_RATES:
            raise AudioFormatError(
                f"the VAD needs audio at one of {', '.join(map(str, VAD_RATES))} Hz, "
                f"not {sample_rate} Hz"
            )
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"VAD aggressiveness must be 0..3, not {aggressiveness}")
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self.frame_ms = float(FRAME_MS)
        self.energy_threshold = energy_threshold
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: np.ndarray) -> bool:
        if _rms(frame) < self.energy_threshold:
            return False
        return bool(self._vad.is_speech(frame.astype("<i2").tobytes(), self.sample_rate))


class SileroClassifier:
    """Speech / not speech for one 32 ms window: Silero's probability against `threshold`,
    with hysteresis inside speech. Every window goes to Silero: it is recurrent, and fed
    only the windows an energy gate (or WebRTC's VAD) passed, it scored a question said
    over an echo canceller's output 0.2-0.5 where, fed everything, it said 0.9 (a reset
    after skipped windows was worse still). It costs about 2 ms of a core per window."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.sample_rate = SILERO_RATE
        self.frame_samples = WINDOW_SAMPLES
        self.frame_ms = WINDOW_SAMPLES * 1000 / SILERO_RATE
        self.threshold = threshold
        self._silero = SileroVad()
        self._voiced = False
        self.last_probability = 0.0

    def is_speech(self, frame: np.ndarray) -> bool:
        self.last_probability = self._silero.probability(frame)
        needed = self.threshold - SILERO_END_MARGIN if self._voiced else self.threshold
        self._voiced = self.last_probability >= needed
        return self._voiced

    def reset(self) -> None:
        self._silero.reset()
        self._voiced = False


def make_classifier(engine: str, sample_rate: int, aggressiveness: int = 2,
                    energy_threshold: float = 0.005,
                    speech_threshold: float = 0.5) -> FrameClassifier | SileroClassifier:
    """'silero', 'webrtc', or 'auto': Silero when it is installed and the audio is 16 kHz."""
    if engine not in VAD_ENGINES:
        raise ValueError(f"VAD engine must be one of {', '.join(VAD_ENGINES)}, not {engine!r}")
    if engine == "auto":
        engine = "silero" if sample_rate == SILERO_RATE and silero_available() else "webrtc"
    if engine == "silero":
        if sample_rate != SILERO_RATE:
            raise AudioFormatError(f"Silero VAD needs {SILERO_RATE} Hz audio, not "
                                   f"{sample_rate} Hz")
        return SileroClassifier(speech_threshold)
    return FrameClassifier(sample_rate, aggressiveness, energy_threshold)


class Endpointer:
    """Streaming endpointer: `process(chunk)` returns the start/end events it caused."""

    def __init__(
        self,
        sample_rate: int = 16000,
        aggressiveness: int = 2,
        energy_threshold: float = 0.005,
        pre_roll_ms: int = 300,
        end_silence_ms: int = 600,
        *,
        start_speech_ms: int = 90,
        max_utterance_seconds: float = 20.0,
        engine: str = "webrtc",
        speech_threshold: float = 0.5,
        start_gap_ms: int = 0,
        quick_end_silence_ms: int = 0,
        unfinished_end_silence_ms: int = 0,
    ) -> None:
        """`start_gap_ms`: unvoiced frames allowed among the `start_speech_ms` of voiced ones
        that start speech (0: they must be consecutive). `quick_end_silence_ms`: the silence
        that ends an utterance while `complete` is True (0: never shorter than
        `end_silence_ms`); `unfinished_end_silence_ms`: the silence that ends it while
        `unfinished` is True (0: never longer)."""
        self.sample_rate = sample_rate
        self._classifier = make_classifier(engine, sample_rate, aggressiveness,
                                           energy_threshold, speech_threshold)
        self.engine = "silero" if isinstance(self._classifier, SileroClassifier) else "webrtc"
        self._frame = self._classifier.frame_samples
        self.frame_ms = frame_ms = self._classifier.frame_ms
        self._pre_roll_frames = max(0, round(pre_roll_ms / frame_ms))
        self._end_frames = max(1, round(end_silence_ms / frame_ms))
        self._quick_frames = (min(self._end_frames, max(1, round(quick_end_silence_ms / frame_ms)))
                              if quick_end_silence_ms > 0 else self._end_frames)
        self._unfinished_frames = max(self._end_frames,
                                      round(unfinished_end_silence_ms / frame_ms))
        self.complete = False
        """Set by the caller before `process`: what was said so far sounds like a whole
        request, so `quick_end_silence_ms` of silence ends it."""
        self.unfinished = False
        """Set by the caller before `process`: what was said so far stops mid-request
        ("Tell me,"), so the person gets `unfinished_end_silence_ms` to go on."""
        self._start_frames = max(1, round(start_speech_ms / frame_ms))
        self._start_span = self._start_frames + round(start_gap_ms / frame_ms)
        self._max_frames = max(1, int(max_utterance_seconds * 1000 / frame_ms))
        self._keep_after = round(_KEEP_AFTER_SPEECH_MS / frame_ms)
        self.reset()

    def reset(self) -> None:
        """Forget all audio and return to 'not in speech'."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._before: collections.deque[np.ndarray] = collections.deque(
            maxlen=self._pre_roll_frames + self._start_span
        )
        self._recent: collections.deque[bool] = collections.deque(maxlen=self._start_span)
        self._utterance: list[np.ndarray] = []
        self._silent_run = 0
        self._quiet_run = 0
        self._loudest = 0.0
        self._in_speech = False
        self._frames_seen = 0
        self.complete = False
        if isinstance(self._classifier, SileroClassifier):
            self._classifier.reset()

    @property
    def in_speech(self) -> bool:
        """True between a SPEECH_START and its SPEECH_END."""
        return self._in_speech

    @property
    def silence_ms(self) -> float:
        """The silence since the speech last stopped (0 outside speech or while voiced)."""
        return self._silent_run * self.frame_ms if self._in_speech else 0.0

    @property
    def quiet_ms(self) -> float:
        """The quiet since the speech last stopped: silence, or windows under `QUIET_LEVEL`
        of the loudest (at least `silence_ms`; what `quick_end_silence_ms` counts)."""
        return self._quiet_run * self.frame_ms if self._in_speech else 0.0

    def process(self, chunk: AudioChunk) -> list[VadEvent]:
        chunk.expect(self.sample_rate, consumer="the endpointer")
        self._pending = np.concatenate([self._pending, chunk.samples])
        events: list[VadEvent] = []
        offset = 0
        while len(self._pending) - offset >= self._frame:
            frame = self._pending[offset:offset + self._frame]
            offset += self._frame
            event = self._step(frame, self._classifier.is_speech(frame))
            if event is not None:
                events.append(event)
        self._pending = self._pending[offset:].copy()
        return events

    def _step(self, frame: np.ndarray, voiced: bool) -> VadEvent | None:
        self._frames_seen += 1
        if not self._in_speech:
            self._before.append(frame)
            self._recent.append(voiced)
            if sum(self._recent) < self._start_frames:
                return None
            run = len(self._recent) - list(self._recent).index(True)
            self._in_speech = True
            self._utterance = list(self._before)
            self._before.clear()
            self._silent_run = 0
            began = self._seconds(self._frames_seen - run)
            return VadEvent(VadEventKind.SPEECH_START, self._seconds(), self._joined(),
                            speech_seconds=began)
        self._utterance.append(frame)
        self._silent_run = 0 if voiced else self._silent_run + 1
        rms = _rms(frame)
        self._loudest = max(self._loudest, rms)
        quiet = not voiced or rms < QUIET_LEVEL * self._loudest
        self._quiet_run = self._quiet_run + 1 if quiet else 0
        truncated = len(self._utterance) >= self._max_frames
        if self.complete:
            run, needed = self._quiet_run, self._quick_frames
        else:
            run = self._silent_run
            needed = self._unfinished_frames if self.unfinished else self._end_frames
        if run < needed and not truncated:
            return None
        drop = max(0, run - self._keep_after)
        if drop:
            del self._utterance[-drop:]
        event = VadEvent(VadEventKind.SPEECH_END, self._seconds(), self._joined(),
                         truncated=truncated and run < needed,
                         speech_seconds=self._seconds(self._frames_seen - run))
        self._in_speech = False
        self._utterance = []
        self._recent.clear()
        self.complete = False
        return event

    def _seconds(self, frames: int | None = None) -> float:
        return round((self._frames_seen if frames is None else frames) * self.frame_ms / 1000, 3)

    def _joined(self) -> AudioChunk:
        return AudioChunk(np.concatenate(self._utterance), self.sample_rate)


def trim_silence(chunk: AudioChunk, aggressiveness: int = 2, energy_threshold: float = 0.005,
                 pad_ms: int = 300) -> AudioChunk:
    """`chunk` without the silence before and after the speech in it, keeping `pad_ms`
    on each side. A recording without speech comes back empty (0 frames)."""
    mono = chunk.to_mono()
    classifier = FrameClassifier(mono.sample_rate, aggressiveness, energy_threshold)
    size = classifier.frame_samples
    voiced = [i for i in range(0, mono.frames - size + 1, size)
              if classifier.is_speech(mono.samples[i:i + size])]
    if not voiced:
        return AudioChunk(np.zeros(0, dtype=np.int16), mono.sample_rate)
    pad = mono.sample_rate * pad_ms // 1000
    start = max(0, voiced[0] - pad)
    end = min(mono.frames, voiced[-1] + size + pad)
    return AudioChunk(mono.samples[start:end].copy(), mono.sample_rate)
