"""The voice: synthesis and playback stages, beeps and announcements.

The synthesis thread turns each `Sentence` into audio while the speaker plays the
one before; the playback thread plays it, checking the turn's cancel token per
chunk. A beep (the stop beep at the end of a question) is played at once, and dropped
when reply audio is already waiting (or held, below): it never holds the reply back.
An announcement (`announce`) is synthesized before the sentences waiting in the queue
and played at the next sentence boundary: after the sentence being spoken, before the
rest of the reply.

A sentence may be synthesized ahead and held back (`hold`): the first sentence of a
reply drafted while the person pauses (reply.py). Its audio waits until `release`
sends it to the speaker, or is thrown away by `drop` (or `silence`). It is synthesized
on the synthesis thread like any other sentence, in queue order, so a released
sentence is heard before the ones said after it.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.assistant.frames import (
    Announce,
    AnnouncementAudio,
    Beep,
    PlayItem,
    ReplyEnd,
    Sentence,
    SentenceEnd,
    Speech,
    Stop,
    SynthItem,
    drain,
)
from app.assistant.stage import Stage
from app.assistant.turn import Turn, TurnLedger, Voice
from app.config import Settings
from speech.audio import AudioChunk
from speech.io import AudioSink
from speech.tts import SpeechSynthesizer


@runtime_checkable
class PromptSpeaker(Protocol):
    """A speaker whose idle stream can be readied so a reply is heard at once
    (`speech.devices.Speaker`)."""

    def start_promptly(self) -> None: ...


@dataclass(eq=False)
class HeldSpeech:
    """A sentence synthesized ahead of its turn's reply, kept from the speaker until
    `VoiceStage.release` (made by `VoiceStage.hold`)."""

    sentence: Sentence
    """The queue item its synthesis is asked with (recognized by identity)."""
    dropped: threading.Event = field(default_factory=threading.Event)
    """Set by `drop`: its synthesis stops and its audio is never played."""
    released: bool = False
    """Its audio goes to the speaker (what is synthesized after, at once)."""
    synthesized: bool = False
    """The synthesis thread is done with it."""
    audio: list[Speech | SentenceEnd] = field(default_factory=list)
    """What is synthesized of it and not yet released."""

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it (released or dropped, and synthesized)."""
        return self.synthesized and (self.released or self.dropped.is_set())


class VoiceStage:
    """Speaks replies sentence by sentence; `output` False means text-only replies."""

    def __init__(self, settings: Settings, ledger: TurnLedger,
                 synthesizer: Stage[SpeechSynthesizer], speaker: Stage[AudioSink],
                 *, output: bool) -> None:
        self.settings = settings
        self.ledger = ledger
        self.synthesizer = synthesizer
        self.speaker = speaker
        self.output = output
        """True while replies are spoken (False after a voice failure)."""
        self.synth_q: queue.Queue[SynthItem] = queue.Queue()
        self.play_q: queue.Queue[PlayItem] = queue.Queue()
        self._to_synthesize: collections.deque[Announce] = collections.deque()
        self._to_play: collections.deque[AnnouncementAudio] = collections.deque()
        self._sentence_of: Turn | None = None
        """The turn whose sentence is partly played (announcements wait for its end)."""
        self._announcement_cancel = threading.Event()
        """Set by `hush` to stop the announcement being played."""
        self._synthesis_cancel = threading.Event()
        """Set by `hush` to drop the announcement being synthesized."""
        self._announcements = threading.Lock()
        """Guards the two queues of announcements and their cancel events against `hush`."""
        self.announcing = False
        """An announcement is being played (the microphone ignores it)."""
        self._holds: list[HeldSpeech] = []
        """Sentences held (`hold`) and not yet settled."""
        self._holding = threading.Lock()
        """Guards `_holds` and each held sentence's audio and `released` flag."""

    # ---- called by the other stages and the facade ---------------------------------

    def say(self, turn: Turn, sentence: str) -> None:
        self.synth_q.put(Sentence(turn, sentence))

    def hold(self, turn: Turn, sentence: str) -> HeldSpeech:
        """Synthesize `sentence` of `turn`'s reply now (after what is queued), but keep
        its audio back until `release`."""
        held = HeldSpeech(Sentence(turn, sentence))
        with self._holding:
            self._holds.append(held)
        self.synth_q.put(held.sentence)
        return held

    def release(self, held: HeldSpeech) -> None:
        """Send the held sentence's audio to the speaker now (and the rest of it as it is
        synthesized); nothing when it was dropped."""
        turn = held.sentence.turn
        with self._holding:
            if held.dropped.is_set() or held.released:
                return
            held.released = True
            audio, held.audio = held.audio, []
            for item in audio:  # under the lock: the rest must not overtake it
                self.play_q.put(item)
            self._forget_if_settled(held)
        if any(isinstance(item, Speech) for item in audio):
            self.ledger.first_audio(turn)

    def drop(self, held: HeldSpeech) -> None:
        """Never play the held sentence; its synthesis stops at the next chunk."""
        with self._holding:
            held.dropped.set()
            held.audio.clear()
            self._forget_if_settled(held)

    def end_reply(self, turn: Turn) -> None:
        """The reply is complete: the turn ends when what is queued has been spoken."""
        self.synth_q.put(ReplyEnd(turn))

    def beep(self, make: Callable[[int], AudioChunk]) -> None:
        synthesizer = self.synthesizer.component
        if self.settings.audio.beeps and self.output and synthesizer is not None:
            self.play_q.put(Beep(make(synthesizer.sample_rate)))

    def announce(self, text: str, sound: AudioChunk | None) -> None:
        """Queue `sound` and `text` (the text only while replies are spoken)."""
        if self.output or (sound is not None and self.speaker.component is not None):
            with self._announcements:
                self._to_synthesize.append(Announce(text, sound))
            self.synth_q.put(Announce(text, sound))  # wakes the synthesis thread

    def silence(self, turn: Turn | None) -> None:
        """Stop the speaker now (when `turn` is speaking) and drop queued speech; the
        turn's cancel token is already set."""
        if turn is not None and turn.voice is Voice.SPEAKING:
            self._stop_speaker()
        with self._holding:  # a held sentence is only ever the current turn's
            for held in self._holds:
                held.dropped.set()
                held.audio.clear()
            self._holds.clear()
        drain(self.synth_q, keep=lambda item: isinstance(item, Announce))
        drain(self.play_q, keep=lambda item: isinstance(item, AnnouncementAudio))

    def hush(self) -> None:
        """The user asked for quiet: stop the announcement playing, drop the one being
        synthesized and those waiting."""
        with self._announcements:
            self._to_synthesize.clear()
            self._to_play.clear()
            self._synthesis_cancel.set()
            self._announcement_cancel.set()
        if self.announcing:
            self._stop_speaker()

    def mute(self, turn: Turn) -> None:
        """The voice failed while speaking `turn`: drop its audio, let the text finish."""
        self.ledger.mute(turn)
        drain(self.play_q)

    def stop(self) -> None:
        self.synth_q.put(Stop())
        self.play_q.put(Stop())

    def _stop_speaker(self) -> None:
        speaker = self.speaker.component
        if speaker is not None:
            with contextlib.suppress(Exception):
                speaker.stop()

    # ---- synthesis thread ------------------------------------------------------------

    def run_synthesis(self) -> None:
        while True:
            item = self.synth_q.get()
            self._synthesize_announcements()
            if isinstance(item, Stop):
                return
            if isinstance(item, Announce):
                continue  # (synthesized above)
            turn = item.turn
            held = self._held(item) if isinstance(item, Sentence) else None
            if held is not None:
                self._synthesize_held(held)  # (settles it, whether or not the turn is on)
            elif turn.cancel.is_set() or turn.finished:
                continue
            elif isinstance(item, ReplyEnd):
                self.play_q.put(item)
            elif not (turn.stop_generating.is_set() or turn.voice is Voice.DONE):
                self._synthesize(turn, item.text)

    def _synthesize(self, turn: Turn, text: str) -> None:
        synthesizer = self.synthesizer.component
        if synthesizer is None or not self.output:
            return
        self.synthesizer.busy = turn
        for chunk in synthesizer.synthesize(text, turn.cancel):
            if turn.cancel.is_set():
                break
            self.ledger.first_audio(turn)
            self.play_q.put(Speech(turn, chunk))
        self.synthesizer.busy = None
        self.play_q.put(SentenceEnd(turn))

    def _held(self, item: Sentence) -> HeldSpeech | None:
        """The held sentence whose synthesis `item` asks for (None: a plain sentence)."""
        with self._holding:
            return next((h for h in self._holds if h.sentence is item), None)

    def _synthesize_held(self, held: HeldSpeech) -> None:
        """Synthesize a held sentence into its store, or (once released) for the speaker;
        nothing once dropped."""
        turn = held.sentence.turn
        synthesizer = self.synthesizer.component
        try:
            if turn.cancel.is_set() or turn.finished:
                held.dropped.set()  # (its turn is over: nothing will release it)
            if synthesizer is None or not self.output or held.dropped.is_set():
                return
            self.synthesizer.busy = turn
            for chunk in synthesizer.synthesize(held.sentence.text, held.dropped):
                if turn.cancel.is_set() or held.dropped.is_set():
                    break
                self._keep_or_play(held, Speech(turn, chunk))
            self.synthesizer.busy = None
            self._keep_or_play(held, SentenceEnd(turn))
        finally:
            with self._holding:
                held.synthesized = True
                self._forget_if_settled(held)

    def _forget_if_settled(self, held: HeldSpeech) -> None:
        """(With `_holding` held.) A held sentence is listed until settled: the synthesis
        thread knows its queue item by it, and a beep gives way to it."""
        if held.settled and held in self._holds:
            self._holds.remove(held)

    def _keep_or_play(self, held: HeldSpeech, item: Speech | SentenceEnd) -> None:
        with self._holding:
            if held.dropped.is_set():
                return
            if not held.released:
                held.audio.append(item)
                return
        if isinstance(item, Speech):
            self.ledger.first_audio(item.turn)
        self.play_q.put(item)

    def _synthesize_announcements(self) -> None:
        while True:
            with self._announcements:
                if not self._to_synthesize:
                    return
                announcement = self._to_synthesize.popleft()
                cancel = self._synthesis_cancel = threading.Event()
            synthesizer = self.synthesizer.component
            chunks = [] if announcement.sound is None else [announcement.sound]
            if synthesizer is not None and self.output:
                chunks += synthesizer.synthesize(announcement.text, cancel)
            ready = AnnouncementAudio(announcement.text, chunks)
            with self._announcements:
                if cancel.is_set():
                    continue  # hushed while it was being synthesized
                self._to_play.append(ready)
            self.play_q.put(ready)  # wakes the playback thread

    # ---- playback thread -------------------------------------------------------------

    def run_playback(self) -> None:
        while True:
            item = self.play_q.get()
            if isinstance(item, Stop):
                return
            if isinstance(item, Beep):
                speaker = self.speaker.component
                if speaker is not None and not self._speech_waiting():
                    speaker.play(item.chunk)
            elif not isinstance(item, AnnouncementAudio):
                self._play(item)
            self._play_announcements()

    def _speech_waiting(self) -> bool:
        """Reply audio is queued for the speaker, or held for a reply about to be asked
        (a beep now would delay it)."""
        with self._holding:
            if any(not (h.released or h.dropped.is_set()) for h in self._holds):
                return True
        with self.play_q.mutex:
            return any(isinstance(item, Speech) for item in self.play_q.queue)

    def _play(self, item: Speech | SentenceEnd | ReplyEnd) -> None:
        turn = item.turn
        if turn.cancel.is_set() or turn.finished:
            return
        if isinstance(item, ReplyEnd):
            self._sentence_of = None
            self.ledger.speech_ended(turn)
        elif isinstance(item, SentenceEnd):
            self._sentence_of = None
            if turn.stop_generating.is_set() and turn.voice is Voice.SPEAKING:
                self.ledger.speech_ended(turn, interrupted=True)
        else:
            speaker = self.speaker.component
            first = turn.voice is Voice.QUIET
            if speaker is None or not self.ledger.speech_started(turn):
                return
            if first and isinstance(speaker, PromptSpeaker):
                speaker.start_promptly()
            self._sentence_of = turn
            self.speaker.busy = turn
            speaker.play(item.chunk, turn.cancel)
            self.speaker.busy = None

    def _play_announcements(self) -> None:
        """Play what is announced, unless in the middle of a sentence."""
        turn = self._sentence_of
        if turn is not None and not (turn.cancel.is_set() or turn.finished):
            return
        while True:
            with self._announcements:
                if not self._to_play:
                    return
                announcement = self._to_play.popleft()
                self._announcement_cancel.clear()  # a later hush sets it again
            speaker = self.speaker.component
            if speaker is None:
                continue
            self.announcing = True
            try:
                for chunk in announcement.chunks:
                    if self._announcement_cancel.is_set():
                        break
                    speaker.play(chunk, self._announcement_cancel)
            finally:
                self.announcing = False
