"""What cuts the hands-free latency (issue 16), with the real components: the adaptive
endpoint (Silero + Whisper on Piper's voice), the prompt evaluated ahead (llama.cpp), the
speaker stream readied for a reply (PulseAudio), and the stop beep that never holds a
reply back (pipeline ordering, with fakes)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from app.assistant.ears import Ears
from app.assistant.frames import Beep, ReplyEnd, Speech
from app.assistant.pipeline import Assistant
from app.assistant.stage import Stage
from app.assistant.turn import Trigger, TurnLedger
from app.assistant.voice import VoiceStage
from app.config import EngineSettings, settings_from_dict
from app.events import Code, FinalTranscript, ReplyToken, SpeechStarted, State, StateChanged
from app.speech_setup import build_recognizer
from engine.base import ChatMessage, EngineConfig, GenerationOptions
from engine.conversation import Conversation
from engine.llama_cpp import LlamaCppEngine
from speech.audio import AudioChunk
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.sentences import sounds_complete, sounds_unfinished
from tests.fakes import (
    FakeEngine,
    FakeMicrophone,
    FakeRecognizer,
    FakeSpeaker,
    FakeSynthesizer,
    Stages,
    run_pipeline,
    speech_chunk,
)
from tests.integration.pulse import PulseServer, pulse_server  # noqa: F401 - fixture

RATE = 16000
CHUNK = 480  # 30 ms, as the microphone delivers it


class _SpokenMicrophone(FakeMicrophone):
    """Delivers queued audio in real time (30 ms blocks), silence when there is none;
    `delivered` counts the blocks read so far."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0
        self._next_at = 0.0

    def speak(self, audio: AudioChunk, silence_seconds: float) -> None:
        samples = np.concatenate([audio.samples, np.zeros(round(silence_seconds * RATE),
                                                          dtype=np.int16)])
        for i in range(0, len(samples) - CHUNK + 1, CHUNK):
            self._queue.put(AudioChunk(samples[i:i + CHUNK], RATE))

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        wait = self._next_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._next_at = max(self._next_at, time.monotonic() - 0.1) + CHUNK / RATE
        try:
            chunk = self._queue.get_nowait()
        except queue.Empty:
            chunk = AudioChunk.silence(CHUNK / RATE, RATE)
        self.delivered += 1
        return chunk


def hands_free_assistant(vad: dict[str, object], whisper_tiny_dir: Path
                         ) -> tuple[Assistant, _SpokenMicrophone, list[object]]:
    """A started hands-free assistant with real Silero and Whisper, hearing a
    `_SpokenMicrophone`, with the fake engine and no voice; its events in the list.
    `vad`: the [vad] settings besides engine = "silero"."""
    settings = settings_from_dict({
        "assistant": {"trigger": "hands-free"}, "audio": {"beeps": False},
        "stt": {"backend": "whisper", "model": str(whisper_tiny_dir)},
        "tts": {"enabled": False}, "history": {"enabled": False},
        "vad": {"engine": "silero", **vad}})
    microphone = _SpokenMicrophone()
    assistant = Assistant(settings, engine=FakeEngine(), recognizer=build_recognizer(settings),
                          synthesizer=None, microphone=microphone, speaker=None, history=None,
                          warm_up=False, ears=Ears.from_settings(settings))
    events: list[object] = []
    assistant.subscribe(events.append)
    assistant.start()
    return assistant, microphone, events


def piper_says(voice: PiperSynthesizer, text: str) -> AudioChunk:
    """`text` in Piper's voice, at the microphone's 16 kHz."""
    audio = AudioChunk.concatenate(list(voice.synthesize(text, threading.Event())))
    return resample(audio, RATE)


def test_only_a_whole_question_sounds_complete() -> None:
    assert sounds_complete("What time is it?")
    assert sounds_complete("Who wrote Romeo and Juliet.")
    assert sounds_complete("Tell me, what is the weather like today?")
    for trailing in ("Set a timer for.", "Tell me.", "Turn on the light,", "What is the",
                     "How far is it in", "Turn on the kitchen, Mike.", "Stop", "你好吗", ""):
        assert not sounds_complete(trailing), trailing


def test_a_complete_request_ends_after_less_silence_than_one_that_trails_off(
        piper_voice_onnx: Path, whisper_tiny_dir: Path) -> None:
    """Hands-free, real Silero and Whisper: the same silence follows "What time is it?"
    and "Set a timer for"; the first is ended by the short silence of a whole request,
    the second only by the full one."""
    voice = PiperSynthesizer(piper_voice_onnx, deterministic=True)
    requests = {text: piper_says(voice, text) for text in ("What time is it?", "Set a timer for")}
    assistant, microphone, events = hands_free_assistant(
        {"end_silence_ms": 2000, "quick_end_silence_ms": 250}, whisper_tiny_dir)
    silence_heard: dict[str, float] = {}
    try:
        for text, audio in requests.items():
            since = len(events)
            start = microphone.delivered
            microphone.speak(audio, silence_seconds=3.0)
            deadline = time.monotonic() + 30
            while not any(isinstance(e, FinalTranscript) for e in events[since:]):
                assert time.monotonic() < deadline, f"{text!r} was never heard"
                time.sleep(0.01)
            blocks = microphone.delivered - start
            silence_heard[text] = blocks * CHUNK / RATE - audio.seconds
            while not any(isinstance(e, StateChanged) and e.state == State.IDLE
                          for e in events[since:]):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(1.0)  # the rest of the silence goes by
    finally:
        assistant.shutdown()
        assistant.close()
    heard = [e.text for e in events if isinstance(e, FinalTranscript)]
    assert len(heard) == 2 and "time" in heard[0].lower() and "timer" in heard[1].lower()
    complete, trailing = silence_heard["What time is it?"], silence_heard["Set a timer for"]
    assert trailing >= 2.0  # the full end_silence_ms
    assert complete < trailing - 0.5, silence_heard


def test_only_a_request_cut_mid_way_sounds_unfinished() -> None:
    for cut in ("Tell me.", "Tell me,", "Set a timer for", "Turn on the light,",
                "What is the"):
        assert sounds_unfinished(cut), cut
    for whole in ("Turn on the kitchen light.", "What time is it?", "Stop", "你好吗", ""):
        assert not sounds_unfinished(whole), whole


def _finals_heard(settings_vad: dict[str, object], audio: AudioChunk,
                  whisper_tiny_dir: Path) -> list[str]:
    """The final transcripts of a hands-free assistant (real Silero and Whisper) that
    hears `audio` then 3 s of silence."""
    assistant, microphone, events = hands_free_assistant(settings_vad, whisper_tiny_dir)
    try:
        microphone.speak(audio, silence_seconds=3.0)
        deadline = time.monotonic() + 30
        while microphone.delivered * CHUNK < audio.frames + 2.5 * RATE:
            assert time.monotonic() < deadline, "the microphone stalled"
            time.sleep(0.05)
    finally:
        assistant.shutdown()
        assistant.close()
    return [e.text for e in events if isinstance(e, FinalTranscript)]


def test_a_request_cut_at_a_comma_gets_more_silence_to_go_on(
        piper_voice_onnx: Path, whisper_tiny_dir: Path) -> None:
    """"Tell me, | what time is it?" with a 1.2 s pause at the comma: the pause outlasts
    `end_silence_ms`, but Whisper's transcript of it ("Tell me") stops mid-request, so
    `unfinished_end_silence_ms` keeps the turn open for the rest (live, Piper's own comma
    pause once cut "Tell me, | what is the weather like today?" as "Tell me.")."""
    voice = PiperSynthesizer(piper_voice_onnx, deterministic=True)
    spoken = piper_says(voice, "Tell me, what time is it?")
    # Piper's pause at the comma (its longest quiet inside), drawn out to 1.2 s
    steps = spoken.samples[:spoken.frames // 160 * 160].astype(np.float64).reshape(-1, 160)
    loudness = np.sqrt((steps ** 2).mean(axis=1))
    loud = np.flatnonzero(loudness > 0.03 * loudness.max())
    gap = int(np.argmax(np.diff(loud)))
    cut_at = (loud[gap] + 1) * 160
    audio = AudioChunk.concatenate([
        AudioChunk(spoken.samples[:cut_at], RATE), AudioChunk.silence(1.2, RATE),
        AudioChunk(spoken.samples[(loud[gap + 1] - 5) * 160:], RATE)])
    vad = {"end_silence_ms": 700, "quick_end_silence_ms": 250}
    waited = _finals_heard({**vad, "unfinished_end_silence_ms": 2000}, audio, whisper_tiny_dir)
    assert len(waited) == 1 and "time" in waited[0].lower(), waited
    cut = _finals_heard({**vad, "unfinished_end_silence_ms": 0}, audio, whisper_tiny_dir)
    assert len(cut) == 2 and "time" not in cut[0].lower(), cut  # the control: cut at the comma


def test_prefilled_prompt_leaves_only_its_end_and_keeps_the_reply(smollm2_gguf: Path) -> None:
    engine = LlamaCppEngine(EngineConfig(model_path=smollm2_gguf, context_length=1024,
                                         threads=1))
    system = ChatMessage("system", EngineSettings().system_prompt)
    greedy = GenerationOptions(temperature=0.0, max_tokens=16)
    question = [system, ChatMessage("user", "What is the capital of France?")]
    try:
        cold = "".join(engine.chat(question, greedy))
        "".join(engine.chat([system, ChatMessage("user", "Hi.")], greedy))
        # what was heard so far differs from the final question in its last word
        evaluated = engine.prefill([system, ChatMessage("user", "What is the capital of")])
        assert evaluated > 0
        warm = "".join(engine.chat(question, greedy))
        stats = engine.last_stats
        assert stats is not None
        heard_part = engine.count_prompt_tokens(
            [system, ChatMessage("user", "What is the capital of")])
        assert stats.cached_prompt_tokens >= heard_part - 6
        assert warm == cold  # evaluating ahead changes nothing in the reply
        assert engine.prefill(question) > 0
        "".join(engine.chat(question, greedy))
        assert engine.last_stats is not None
        assert engine.last_stats.cached_prompt_tokens == engine.last_stats.prompt_tokens - 1
    finally:
        engine.close()


def test_the_first_words_are_spoken_before_the_first_sentence_is_written() -> None:
    """Ordering, with fakes: the reply's first phrase goes to the voice and starts playing
    while the model is still writing the rest of the first sentence."""
    reply = "The play Romeo and Juliet was written by William Shakespeare."
    stages = Stages(engine=FakeEngine(replies=(reply,), token_seconds=0.1))
    events = run_pipeline([("text", "Who wrote Romeo and Juliet?")], stages)
    assert stages.synthesizer is not None
    assert stages.synthesizer.sentences == ["The play Romeo and Juliet was written",
                                            "by William Shakespeare."]
    order = [type(e).__name__ if not isinstance(e, ReplyToken) else e.text.strip()
             for e in events if isinstance(e, (ReplyToken, SpeechStarted))]
    assert order.index("SpeechStarted") < order.index("Shakespeare.")


class _PrefillingEngine(FakeEngine):
    """A fake engine that records what it was asked to evaluate ahead, in call order."""

    def __init__(self) -> None:
        super().__init__(replies=("It is noon.",))
        self.order: list[str] = []

    def prefill(self, messages: Sequence[ChatMessage]) -> int:
        self.order.append("prefill " + messages[-1].content)
        return 1

    def chat(self, messages: Sequence[ChatMessage], options: GenerationOptions | None = None,
             cancel: threading.Event | None = None) -> Iterator[str]:
        self.order.append("chat " + messages[-1].content)
        return super().chat(messages, options, cancel)


def test_what_was_heard_is_prefilled_before_the_question_is_asked() -> None:
    """Ordering, with fakes: while the turn still listens, the reply stage evaluates the
    prompt of what has been heard (once it no longer trails off), before the chat."""
    engine = _PrefillingEngine()
    stages = Stages(engine=engine, recognizer=FakeRecognizer(("what time is it",)))
    run_pipeline([("press",), ("say", 0.15), ("sleep", 0.3), ("release",)], stages)
    prefills = [i for i, call in enumerate(engine.order) if call.startswith("prefill")]
    assert prefills and engine.order[-1] == "chat what time is it"
    assert prefills[0] < len(engine.order) - 1
    assert "prefill what" not in engine.order  # one word trails off


def test_stop_beep_is_dropped_when_reply_audio_waits() -> None:
    """Ordering, with fakes: a beep taken off the queue while reply audio waits behind
    it is not played; the reply is."""
    settings = settings_from_dict({"audio": {"beeps": True}})
    ledger = TurnLedger(Conversation("", max_turns=4), lambda event: None, lambda: None,
                        lambda: None)
    speaker = FakeSpeaker(speed=0.05)
    voice = VoiceStage(
        settings, ledger,
        Stage("synthesizer", Code.TTS_FAILED, "The voice", "synth", None, FakeSynthesizer()),
        Stage("speaker", Code.SPEAKER_FAILED, "The speaker", "play", None, speaker),
        output=True)
    turn = ledger.begin(Trigger.TEXT, time.monotonic())
    assert turn is not None and ledger.question(turn, "hello")
    reply = speech_chunk(0.1, level=0.3)
    voice.play_q.put(Beep(AudioChunk.silence(0.12, RATE)))
    voice.play_q.put(Speech(turn, reply))
    voice.play_q.put(ReplyEnd(turn))
    voice.stop()
    voice.run_playback()
    assert [p.chunk for p in speaker.played] == [reply]


def test_a_readied_speaker_plays_the_reply_whole(pulse_server: PulseServer) -> None:  # noqa: F811
    """The speaker stream restarted for a reply (to skip the silence it had buffered)
    loses nothing of it: a 1 s tone arrives at the sink whole, without a gap."""
    from speech.devices import Speaker

    speaker = Speaker(pulse_server.device, sample_rate=22050)
    tone = AudioChunk((np.sin(np.arange(22050) * 0.2) * 8000).astype(np.int16), 22050)
    try:
        time.sleep(0.5)  # idle: only silence in the device buffer
        with pulse_server.recording_speaker(RATE) as recorded:
            speaker.start_promptly()
            for i in range(0, tone.frames, 5512):
                speaker.play(AudioChunk(tone.samples[i:i + 5512], 22050))
            speaker.drain()
    finally:
        speaker.close()
    samples = recorded[0].samples.astype(np.float64)
    steps = samples[:len(samples) // 160 * 160].reshape(-1, 160)  # 10 ms
    loud = np.flatnonzero(np.sqrt((steps ** 2).mean(axis=1)) > 1000)
    assert loud.size
    span = loud[-1] - loud[0] + 1
    assert 97 <= span <= 103  # 1 s of tone
    assert loud.size == span  # no gap inside it
