"""The streaming voice pipeline: speech in, a streamed reply, speech out, interruptible.

A turn: a trigger (push-to-talk, wake word, voice activity, typed text or a file)
starts LISTENING; the recognizer streams partial transcripts while the user speaks;
the final transcript goes to skills or the engine, whose reply streams out; each
finished sentence is synthesized while the model writes the next, and playback starts
with the first. Each stage runs on its own thread, connected by queues of typed frames:

    microphone -> [capture] -> [listen: wake / VAD / recognizer]      (listen.py)
    -> [reply: skills, engine, sentences] -> [synthesis] -> [playback]  (reply.py, voice.py)

`TurnLedger` (turn.py) keeps the turn and the state under a lock never held during
I/O; events go out through an `EventBus` with its own thread, where the
`HistoryRecorder` writes the history. Control actions (push-to-talk, stop, text) never
wait in the stage queues: they set the turn's cancel tokens, silence the speaker and
flush the queues. `Assistant` is the facade the GUI, headless mode and file mode drive.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from app.assistant import beeps
from app.assistant.bus import Callback, EventBus
from app.assistant.ears import Ears
from app.assistant.frames import FileAudio, ListenEnd, ListenStart
from app.assistant.listen import ListenStage
from app.assistant.recorder import HistoryRecorder
from app.assistant.reply import ReplyStage, Skills
from app.assistant.stage import Stages
from app.assistant.supervisor import Supervisor
from app.assistant.turn import Trigger, Turn, TurnLedger
from app.assistant.voice import VoiceStage
from app.config import Settings
from app.events import Announcement, Code, Silenced, State
from app.history import History
from engine.base import ChatEngine, ChatMessage
from engine.conversation import Conversation
from speech.audio import AudioChunk
from speech.errors import SpeechError
from speech.io import AudioSink, AudioSource
from speech.resample import resample
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.wake import WakeWordDetector

_FILE_BLOCK_SECONDS = 0.1
"""File audio is fed to the recognizer in blocks of this length (as fast as it takes)."""


class Assistant:
    """The voice assistant pipeline. Thread-safe; events go to `subscribe`d callbacks.

    `microphone=None` means text input only; `speaker=None` (or `settings.tts.enabled`
    false) means text-only replies. `factories` maps a stage name ("microphone",
    "recognizer", "wake", "engine", "synthesizer", "speaker") to a zero-argument
    callable building a fresh instance, used by the supervisor to rebuild a stage that
    failed; without one, the stage is reset and reused. `warm_up` has the
    engine evaluate the system prompt at start, so the first turn finds it cached.
    `skills` answer what they understand before the engine is asked. `ears` tell speech
    from silence (default: WebRTC's VAD and no barge-in by speech).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine: ChatEngine,
        recognizer: SpeechRecognizer | None,
        synthesizer: SpeechSynthesizer | None,
        microphone: AudioSource | None = None,
        speaker: AudioSink | None = None,
        history: History | None = None,
        wake: WakeWordDetector | None = None,
        factories: Mapping[str, Callable[[], Any]] | None = None,
        warm_up: bool = True,
        skills: Skills | None = None,
        ears: Ears | None = None,
    ) -> None:
        self.settings = settings
        self._stages = Stages.of(
            factories or {}, microphone=microphone, recognizer=recognizer,
            wake=wake if settings.wake.enabled else None, engine=engine,
            synthesizer=synthesizer, speaker=speaker)
        self.bus = EventBus()
        self.conversation = Conversation(settings.engine.system_prompt,
                                         settings.assistant.max_history_turns)
        self._ledger = TurnLedger(self.conversation, self.bus.emit,
                                  lambda: self.engine.last_stats,
                                  lambda: self._listen.back_to_idle())
        self._recorder = HistoryRecorder(
            history, self.bus.emit, lambda: self._stages.model_ids(speaking=self.speech_output))
        self.bus.subscribe(self._recorder)
        speaks = speaker is not None and synthesizer is not None and settings.tts.enabled
        self._voice = VoiceStage(settings, self._ledger, self._stages.synthesizer,
                                 self._stages.speaker, output=speaks)
        self._reply = ReplyStage(settings, self._ledger, self.bus.emit, self._stages.engine,
                                 self._voice, skills, warm_up=warm_up)
        self._listen = ListenStage(
            settings, self._ledger, self.bus.emit, self._voice,
            microphone=self._stages.microphone, recognizer=self._stages.recognizer,
            wake=self._stages.wake, start_turn=self._start_voice_turn, ask=self._reply.ask,
            ears=ears)
        self._supervisor = Supervisor(settings, self._ledger, self._stages, self._listen,
                                      self._reply, self._voice, emit=self.bus.emit,
                                      tell_once=self.bus.tell_once, interrupt=self._interrupt)
        self._started = False

    @property
    def engine(self) -> ChatEngine:
        engine = self._stages.engine.component
        assert engine is not None, "the engine is never dropped, only rebuilt"
        return engine

    @property
    def recognizer(self) -> SpeechRecognizer | None:
        return self._stages.recognizer.component

    @property
    def synthesizer(self) -> SpeechSynthesizer | None:
        return self._stages.synthesizer.component

    @property
    def microphone(self) -> AudioSource | None:
        return self._stages.microphone.component

    @property
    def speaker(self) -> AudioSink | None:
        return self._stages.speaker.component

    @property
    def wake(self) -> WakeWordDetector | None:
        return self._stages.wake.component

    @property
    def history(self) -> History | None:
        return self._recorder.history

    @property
    def state(self) -> State:
        return self._ledger.state

    @property
    def messages(self) -> list[ChatMessage]:
        """The conversation the model sees next: system prompt plus the kept earlier turns
        (before trimming to the context window, which happens per turn)."""
        with self._ledger.lock:
            return self.conversation.messages

    @property
    def speech_output(self) -> bool:
        """True while replies are spoken (False after a voice failure or without a speaker)."""
        return self._voice.output

    @property
    def voice_input(self) -> bool:
        """True when there is a working microphone and recognizer."""
        return self.microphone is not None and self.recognizer is not None

    # ---- life cycle ------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> None:
        """Call `callback(event)` for every event, in order, from a dispatcher thread."""
        self.bus.subscribe(callback)

    def start(self) -> None:
        """Start the stage threads (and the microphone). Call once."""
        if not self._started:
            self._started = True
            self.bus.start()
            self._supervisor.start()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop: the sentence being spoken finishes (within `timeout`), the turn is saved
        to history (marked interrupted), the threads end and events are delivered."""
        deadline = time.monotonic() + timeout
        with self._ledger.lock:
            self._ledger.closing = True
            turn = self._ledger.current
        if turn is not None:
            if self.state == State.SPEAKING:
                turn.stop_generating.set()
                while not turn.finished and time.monotonic() < deadline:
                    time.sleep(0.01)
            if not turn.finished:
                self._interrupt(turn)
        self._supervisor.stop(deadline)
        self.bus.close(deadline - time.monotonic())

    def close(self) -> None:
        """`shutdown()` if still running, then release every stage (models, devices).
        The history is left open: it belongs to whoever passed it in."""
        if self._started and not self._supervisor.stopping.is_set():
            self.shutdown()
        self._supervisor.release()

    # ---- control actions (any thread; none waits on disk or on a stage) --------------

    def push_to_talk_pressed(self) -> None:
        """Start listening; while THINKING or SPEAKING this is a barge-in."""
        pressed_at = time.monotonic()
        self._silenced()
        if not self.voice_input:
            self.bus.tell_once(Code.NO_MICROPHONE, "No microphone is available, so Hearth "
                               "takes typed questions only.")
            return
        turn = self._start_voice_turn(Trigger.PUSH_TO_TALK, pressed_at)
        if turn is not None:
            self._listen.q.put(ListenStart(turn))

    def push_to_talk_released(self) -> None:
        """End of the question: recognition finishes and the reply starts."""
        released_at = time.monotonic()
        with self._ledger.lock:
            turn = self._ledger.current
            if turn is None or self.state != State.LISTENING or turn.end_of_input_at is not None:
                return
            turn.end_of_input_at = released_at
        self._listen.q.put(ListenEnd(turn))

    def submit_text(self, text: str) -> None:
        """A typed question: a turn without recognition (interrupts any turn in progress)."""
        text = text.strip()
        if not text:
            return
        now = time.monotonic()
        turn = self._replace_turn(Trigger.TEXT, now)
        if turn is not None:
            self._ledger.end_of_input(turn, now)
            if self._ledger.question(turn, text):
                self._reply.ask(turn)

    def submit_audio(self, audio: AudioChunk) -> None:
        """A spoken question from a file: one turn, recognized as fast as the recognizer
        goes; end of input is when the last sample has been fed (`hearth ask --wav`)."""
        if self.recognizer is None:
            raise SpeechError("speech recognition is not available, so audio cannot be asked")
        audio = resample(audio, self.recognizer.sample_rate)
        turn = self._replace_turn(Trigger.FILE, time.monotonic())
        if turn is None:
            return
        self._listen.q.put(ListenStart(turn))
        block = max(1, round(_FILE_BLOCK_SECONDS * audio.sample_rate))
        for start in range(0, audio.frames, block):
            self._listen.q.put(FileAudio(turn, AudioChunk(audio.samples[start:start + block],
                                                          audio.sample_rate)))
        self._listen.q.put(ListenEnd(turn))

    def cancel(self) -> None:
        """Stop button: cancel listening, generation, synthesis and playback; back to IDLE."""
        self._silenced()
        turn = self._ledger.current
        if turn is not None:
            self._interrupt(turn)

    def announce(self, text: str, *, sound: AudioChunk | None = None) -> None:
        """Say `text` on Hearth's own initiative (after `sound`, if any), also while a
        turn runs: after the sentence being spoken. Sends an `Announcement`."""
        self.bus.emit(Announcement(text))
        self._voice.announce(text, sound)

    def history_failed(self, text: str) -> None:
        """Tell the user that the conversation is not being saved (see `HistoryRecorder`)."""
        self._recorder.failed(text)

    def _silenced(self) -> None:
        self._voice.hush()
        self.bus.emit(Silenced())

    def _start_voice_turn(self, trigger: Trigger, at: float) -> Turn | None:
        """A spoken turn begins (with the start beep), interrupting one that is thinking
        or speaking; None when one is already listening or Hearth is shutting down."""
        if self.state == State.LISTENING:
            return None  # already listening: a second press changes nothing
        turn = self._replace_turn(trigger, at)
        if turn is not None:
            self._voice.beep(beeps.start_beep)
        return turn

    def _replace_turn(self, trigger: Trigger, at: float) -> Turn | None:
        """Silence the turn in progress, then begin the new one (which closes it)."""
        current = self._ledger.current
        if current is not None:
            self._silence(current)
        return self._ledger.begin(trigger, at)

    def _interrupt(self, turn: Turn) -> None:
        """Barge-in / stop: cancel everything of `turn` now and close it as interrupted."""
        if not turn.finished:
            self._silence(turn)
            self._ledger.finish(turn, interrupted=True)

    def _silence(self, turn: Turn) -> None:
        turn.cancel.set()
        turn.stop_generating.set()
        self._voice.silence(turn)
