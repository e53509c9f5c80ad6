"""The ears: the capture stage (microphone -> listen queue) and the listen stage (wake
word, voice activity, recognizer).

The listen thread decides what each piece of microphone audio is for, by what the
assistant is doing:
- a turn is listening: the recognizer hears it (and, for a turn the endpointer ends,
  so does the endpointer);
- idle: the wake word or, hands-free, speech detected by the VAD starts a turn;
- thinking or speaking (`_while_answering`): audio that can interrupt the reply. On the
  sound server's echo-cancelled signal (`AudioSource.echo_cancelled`) the wake word, and
  with `[audio] barge_in = "speech"` also speech (app/assistant/barge_in.py), cancels the
  reply and starts listening. Without a canceller only the wake word, at a stricter
  probability, with `listen_while_speaking`; otherwise half duplex.

A `SelfTriggerGuard` ignores the wake word while Hearth's own reply says it (and for a
second after, the room's echo).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from app.assistant import beeps
from app.assistant.barge_in import BargeInBySpeech
from app.assistant.ears import Ears, StartMode
from app.assistant.frames import FileAudio, ListenItem, ListenStart, MicAudio, Stop
from app.assistant.stage import Stage
from app.assistant.turn import Trigger, Turn, TurnLedger, Voice
from app.assistant.voice import VoiceStage
from app.config import Settings
from app.events import AudioLevel, Event, PartialTranscript, State
from speech.audio import AudioChunk
from speech.errors import SpeechError
from speech.io import AudioSource
from speech.sentences import sounds_complete, sounds_unfinished
from speech.stt import SpeechRecognizer
from speech.vad import Endpointer, VadEventKind
from speech.wake import SelfTriggerGuard, WakeWordDetector

log = logging.getLogger(__name__)


class ListenStage:
    """Capture and listen loops. `start_turn(trigger, at)` begins a spoken turn (None
    when none began); `ask(turn)` hands a turn whose question is known to the reply."""

    def __init__(self, settings: Settings, ledger: TurnLedger, emit: Callable[[Event], None],
                 voice: VoiceStage, *, microphone: Stage[AudioSource],
                 recognizer: Stage[SpeechRecognizer], wake: Stage[WakeWordDetector],
                 start_turn: Callable[[Trigger, float], Turn | None],
                 ask: Callable[[Turn], None], ears: Ears | None = None) -> None:
        self.settings = settings
        self.ears = ears or Ears.webrtc(settings)
        self.ledger = ledger
        self.voice = voice
        self.microphone = microphone
        self.recognizer = recognizer
        self.wake = wake
        self.mode = StartMode.of(settings)
        self.q: queue.Queue[ListenItem] = queue.Queue()
        self.flush_microphone = threading.Event()
        """Set: capture drops what the microphone holds (our own voice, after a reply)."""
        self.started_microphone: AudioSource | None = None
        """The microphone capture need not start (reopening it already did)."""
        self.part: Stage[SpeechRecognizer] | Stage[WakeWordDetector] = recognizer
        """The component the listen thread is running, to blame the right one."""
        self._emit = emit
        self._start_turn = start_turn
        self._ask = ask
        self._hearing: Turn | None = None
        self._partial_at = 0.0
        """Seconds into the turn's audio when its last partial transcript arrived."""
        self._endpointer: Endpointer | None = None
        self.barge_in = BargeInBySpeech(settings, self.ears,
                                        lambda: self._need_recognizer().sample_rate,
                                        lambda: self.voice.speaker.component)
        self.guard = SelfTriggerGuard(settings.wake.phrase)

    # ---- capture thread --------------------------------------------------------------

    def capture(self, stopping: threading.Event) -> None:
        """Read the microphone until `stopping`, passing on what the listen stage can use."""
        mic = self.microphone.component
        if mic is None:
            return
        if mic is not self.started_microphone:
            mic.start()
            self.started_microphone = mic
        while not stopping.is_set():
            chunk = mic.read(timeout=0.1)
            if self.flush_microphone.is_set():
                self.flush_microphone.clear()
                mic.flush()
                continue
            if chunk is None:
                if mic.exhausted:
                    time.sleep(0.05)
                continue
            if self._wants_audio():
                self.q.put(MicAudio(chunk))

    def _wants_audio(self) -> bool:
        state = self.ledger.state
        if state == State.LISTENING:
            return True
        if self.voice.announcing:
            return False
        if state == State.IDLE:
            return self.wake.component is not None or self.mode is StartMode.HANDS_FREE
        # THINKING / SPEAKING: an echo-cancelled signal is heard; otherwise half duplex
        # unless the wake word may barge in
        return self.echo_cancelled or (self.settings.audio.listen_while_speaking
                                       and self.wake.component is not None)

    @property
    def echo_cancelled(self) -> bool:
        """The microphone records the sound server's echo-cancelled signal."""
        mic = self.microphone.component
        return mic is not None and mic.echo_cancelled

    # ---- listen thread ---------------------------------------------------------------

    def run(self) -> None:
        while True:
            item = self.q.get()
            if isinstance(item, Stop):
                return
            if isinstance(item, MicAudio):
                self._microphone_audio(item.chunk)
            elif isinstance(item, ListenStart):
                if not item.turn.cancel.is_set():
                    self.begin(item.turn)
            elif item.turn is self._hearing:
                if isinstance(item, FileAudio):
                    self._hear(item.turn, item.chunk)
                else:
                    self._end(item.turn)

    def begin(self, turn: Turn) -> None:
        """Start recognizing `turn`'s question (on the listen thread)."""
        recognizer = self._need_recognizer()
        recognizer.reset()
        self._hearing = turn
        self._partial_at = 0.0
        self.recognizer.busy = turn
        if turn.trigger is Trigger.WAKE_WORD:  # (a VAD turn's endpointer is mid-utterance)
            self._vad().reset()

    def back_to_idle(self) -> None:
        """A turn is over: half duplex drops what the microphone heard of our own voice."""
        if not self.settings.audio.listen_while_speaking:
            self.flush_microphone.set()

    def failed(self) -> None:
        """The listen thread failed: whatever it was hearing is dropped."""
        self._hearing = None

    def _microphone_audio(self, chunk: AudioChunk) -> None:
        current = self.ledger.current
        if current is not None and current.voice is Voice.SPEAKING:
            self.guard.reply(current.reply_text)
        else:
            self.guard.silent()
        turn = self._hearing
        if turn is not None:
            if turn.trigger.live:
                self._hear(turn, chunk)
        elif self.ledger.state in (State.THINKING, State.SPEAKING):
            self._while_answering(chunk)
        elif self.ledger.state == State.IDLE:
            self._while_idle(chunk)

    def _while_idle(self, chunk: AudioChunk) -> None:
        """The wake word, or (hands-free) speech starting, begins a turn."""
        if self.wake.component is not None:
            self._spot_wake_word(chunk)
        elif self.mode is StartMode.HANDS_FREE:
            for event in self._vad().process(chunk):
                if event.kind == VadEventKind.SPEECH_START:
                    turn = self._start_turn(Trigger.VAD, time.monotonic())
                    if turn is not None:  # pre-roll and speech so far: the first syllables
                        self.begin(turn)
                        self._hear(turn, event.audio, endpoint=False)

    def _while_answering(self, chunk: AudioChunk) -> None:
        """Audio heard while Hearth thinks or speaks: the wake word barges in (at a
        stricter probability without echo cancellation), and on an echo-cancelled signal
        so may speech (`BargeInBySpeech`; the person's words so far go to the recognizer)."""
        cancelled = self.echo_cancelled
        if self.wake.component is not None and self._spot_wake_word(chunk, strict=not cancelled):
            return
        speech = self.barge_in.hear(chunk, self.ledger.current, cancelled,
                                    waiting_seconds=self.q.qsize() * chunk.seconds)
        if speech is not None:
            turn = self._start_turn(Trigger.VAD, time.monotonic())
            if turn is not None:
                self._vad().reset()
                self.begin(turn)
                self._hear(turn, speech)

    def _spot_wake_word(self, chunk: AudioChunk, strict: bool = False) -> bool:
        """Feed the wake-word detector; True when it started a turn."""
        wake = self.wake.component
        if wake is None:
            return False
        self.part = self.wake
        wake.set_strict(strict)
        detected = wake.detect(chunk)
        self.part = self.recognizer
        if detected is not None and self.guard.allows():
            log.info("wake word %r (probability %s) while %s", detected.wake_word,
                     detected.probability, self.ledger.state.value)
            turn = self._start_turn(Trigger.WAKE_WORD, time.monotonic())
            if turn is not None:
                self.begin(turn)
                return True
        return False

    def _hear(self, turn: Turn, chunk: AudioChunk, endpoint: bool = True) -> None:
        """Feed the recognizer; `endpoint` also feeds the endpointer (wake/VAD turns)."""
        if turn.cancel.is_set():
            self._stop_hearing()
            return
        recognizer = self._need_recognizer()
        self._emit(AudioLevel(_rms(chunk), turn_id=turn.turn_id))
        partial = recognizer.accept(chunk)
        if partial is not None and partial.text:
            # (the same text again: a decode in the pause confirmed it)
            self._partial_at = turn.listened_seconds
            if partial.text != turn.last_partial:
                turn.last_partial = partial.text
                self._emit(PartialTranscript(partial.text, turn_id=turn.turn_id))
        turn.listened_seconds += chunk.seconds
        if endpoint and turn.trigger.endpointed:
            # what was heard counts as all that was said before this pause if it came in
            # the pause (the endpointer's quiet, which starts with the words' end): an older
            # partial misses later words. Then a request that already sounds whole ends
            # after less quiet, and the reply may be drafted from it
            vad = self._vad()
            pause_began = turn.listened_seconds - vad.quiet_ms / 1000
            fresh = vad.quiet_ms > 0 and self._partial_at >= pause_began
            turn.pause_transcript = turn.last_partial if fresh else ""
            vad.complete = fresh and sounds_complete(turn.last_partial)
            # ... and one that stops mid-request ("Tell me,") waits longer for the rest
            vad.unfinished = fresh and sounds_unfinished(turn.last_partial)
            ended = any(e.kind == VadEventKind.SPEECH_END for e in vad.process(chunk))
            too_long = turn.listened_seconds >= self.settings.vad.max_utterance_seconds
            if ended or too_long:
                self.ledger.end_of_input(turn, time.monotonic())
                self._end(turn)

    def _end(self, turn: Turn) -> None:
        transcript = self._need_recognizer().finish()
        self._stop_hearing()
        self.ledger.end_of_input(turn, time.monotonic())
        with self.ledger.lock:
            if turn.cancel.is_set() or turn.finished:
                return
            self.voice.beep(beeps.stop_beep)
            if self.ledger.question(turn, transcript.text.strip()):
                self._ask(turn)

    def _stop_hearing(self) -> None:
        self._hearing = None
        self.recognizer.busy = None

    def _need_recognizer(self) -> SpeechRecognizer:
        recognizer = self.recognizer.component
        if recognizer is None:
            raise SpeechError("no speech recognizer is available")
        return recognizer

    def _vad(self) -> Endpointer:
        if self._endpointer is None:
            self._endpointer = self.ears.endpointer(self._need_recognizer().sample_rate)
        return self._endpointer


def _rms(chunk: AudioChunk) -> float:
    if chunk.frames == 0:
        return 0.0
    samples = chunk.to_float()
    return float(np.sqrt(np.mean(np.square(samples))))
