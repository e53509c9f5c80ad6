"""Real audio through a private PulseAudio: Piper speaks into the "microphone" sink,
Hearth's Microphone records its monitor, PocketSphinx recognizes it; Hearth's Speaker
plays Piper's reply into the "speaker" sink, which the test records back.

Also: the endpointer on real speech, and the PocketSphinx wake word.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from speech.audio import AudioChunk
from speech.devices import Microphone, Speaker, find_device
from speech.piper_tts import PiperSynthesizer
from speech.resample import resample
from speech.sphinx import PocketSphinxRecognizer
from speech.stt import Transcript
from speech.vad import Endpointer, VadEventKind, trim_silence
from speech.wake_sphinx import SphinxWakeWord
from speech.wav import WavSource, write_wav
from tests.integration.pulse import PulseServer, pulse_server  # noqa: F401 - fixture

SPOKEN = "please turn on the kitchen lights and set a timer for ten minutes"
MAX_WER = 0.35
"""PocketSphinx on Piper's voice after two resampling steps through PulseAudio:
typically 0-0.15 here; 0.35 allows a few substitutions without passing garbage."""
REPLY = "Okay, the kitchen lights are on, and your timer is set for ten minutes."


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words, divided by the reference length."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (r != h))
    return row[-1] / len(ref)


def rms(chunk: AudioChunk) -> float:
    return float(np.sqrt(np.mean(np.square(chunk.to_float())))) if chunk.frames else 0.0


@pytest.fixture(scope="module")
def piper(piper_voice_onnx: Path) -> PiperSynthesizer:
    return PiperSynthesizer(piper_voice_onnx, deterministic=True)  # same audio every run


@pytest.fixture(scope="module")
def sphinx(pocketsphinx_en_dir: Path) -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer(pocketsphinx_en_dir)


def speak(piper: PiperSynthesizer, text: str, rate: int | None = None) -> AudioChunk:
    audio = AudioChunk.concatenate(list(piper.synthesize(text)))
    return resample(audio, rate) if rate else audio


def test_word_error_rate_helper() -> None:
    assert word_error_rate("a b c d", "a x c d") == 0.25
    assert word_error_rate("a b", "a b") == 0.0
    assert word_error_rate("a b", "") == 1.0


def test_piper_into_microphone_is_recognized_by_pocketsphinx(
    pulse_server: PulseServer, piper: PiperSynthesizer, sphinx: PocketSphinxRecognizer,  # noqa: F811
    tmp_path: Path,
) -> None:
    speech = speak(piper, SPOKEN)
    wav = write_wav(tmp_path / "question.wav", AudioChunk.concatenate(
        [AudioChunk.silence(0.5, speech.sample_rate), speech,
         AudioChunk.silence(1.0, speech.sample_rate)]))
    mic = Microphone(pulse_server.device)
    assert mic.capture_rate != mic.sample_rate  # capture at the native rate, resample to 16 k
    endpointer = Endpointer()
    events = []
    partials: list[Transcript] = []
    mic.start()
    try:
        player = pulse_server.play_wav_to_mic(wav, wait=False)
        deadline = time.monotonic() + speech.seconds + 8.0
        stop_at = deadline
        while time.monotonic() < stop_at:
            if stop_at == deadline and player.poll() is not None:
                stop_at = time.monotonic() + 0.5  # what paplay wrote is still in flight
            chunk = mic.read(timeout=0.2)
            if chunk is None:
                continue
            assert chunk.sample_rate == 16000 and chunk.channels == 1
            events += endpointer.process(chunk)
            partial = sphinx.accept(chunk)
            if partial is not None:
                partials.append(partial)
        player.wait(10)
    finally:
        mic.stop()
    final = sphinx.finish()
    wer = word_error_rate(SPOKEN, final.text)
    assert wer <= MAX_WER, f"heard {final.text!r} (WER {wer:.2f})"
    assert partials and not partials[0].is_final
    assert [w.word for w in final.words] == final.text.split()
    assert all(0.0 <= w.confidence <= 1.0 for w in final.words)
    starts = [w.start_seconds for w in final.words]
    assert starts == sorted(starts)
    kinds = [e.kind for e in events]
    assert kinds[:2] == [VadEventKind.SPEECH_START, VadEventKind.SPEECH_END]
    utterance = events[1].audio
    assert speech.seconds - 0.3 < utterance.seconds < speech.seconds + 1.2
    assert mic.overruns == 0


@pytest.mark.parametrize("stream_rate", ["native", "voice"])
def test_speaker_plays_piper_reply_into_the_speaker_sink(
    pulse_server: PulseServer, piper: PiperSynthesizer, stream_rate: str,  # noqa: F811
) -> None:
    chunks = list(piper.synthesize(REPLY))
    expected = sum(c.seconds for c in chunks)
    # "native": 22050 Hz slices resampled on the fly to the device's rate; "voice": none
    speaker = Speaker(pulse_server.device,
                      sample_rate=piper.sample_rate if stream_rate == "voice" else 0)
    assert (speaker.sample_rate == piper.sample_rate) == (stream_rate == "voice")
    try:
        with pulse_server.recording_speaker() as recorded:
            for chunk in chunks:
                speaker.play(chunk)
            speaker.drain()
    finally:
        speaker.close()
    heard = trim_silence(recorded[0], pad_ms=0)
    assert rms(heard) > 0.02
    assert expected - 0.4 < heard.seconds < expected + 0.4


def test_speaker_stop_cuts_playback_short(
    pulse_server: PulseServer, piper: PiperSynthesizer,  # noqa: F811
) -> None:
    long_audio = speak(piper, REPLY + " " + REPLY)
    speaker = Speaker(pulse_server.device)
    try:
        with pulse_server.recording_speaker() as recorded:
            player = threading.Thread(target=speaker.play, args=(long_audio,))
            player.start()
            time.sleep(1.0)
            speaker.stop()
            player.join(timeout=2.0)
            assert not player.is_alive(), "play() did not return after stop()"
            time.sleep(0.5)
    finally:
        speaker.close()
    heard = trim_silence(recorded[0], pad_ms=0)
    # about 1 s played of ~9 s; generous margin for daemon latency on a busy machine
    assert 0.3 < heard.seconds < 2.5 < long_audio.seconds


def test_microphone_gate_drops_audio_while_closed(
    pulse_server: PulseServer, piper: PiperSynthesizer, tmp_path: Path,  # noqa: F811
) -> None:
    wav = write_wav(tmp_path / "gated.wav", speak(piper, "this should not be heard"))
    mic = Microphone(pulse_server.device)
    mic.start()
    try:
        mic.set_gate(True)
        pulse_server.play_wav_to_mic(wav)
        assert mic.read(timeout=0.3) is None
        mic.set_gate(False)
        chunk = mic.read(timeout=2.0)
        assert chunk is not None and chunk.sample_rate == 16000
    finally:
        mic.stop()


def test_device_lookup_by_name_and_index(pulse_server: PulseServer) -> None:  # noqa: F811
    by_name = find_device("PULS", "input")
    assert by_name.name == "pulse"
    assert find_device(str(by_name.index), "output").index == by_name.index


@pytest.fixture(scope="module")
def wake_recordings(piper: PiperSynthesizer, tmp_path_factory: pytest.TempPathFactory
                    ) -> dict[str, Path]:
    pause = AudioChunk.silence(0.7, 16000)
    folder = tmp_path_factory.mktemp("wake")

    def recording(name: str, sentences: list[str]) -> Path:
        parts = [pause]
        for sentence in sentences:
            parts += [speak(piper, sentence, 16000), pause]
        return write_wav(folder / f"{name}.wav", AudioChunk.concatenate(parts))

    return {
        "with": recording("with", ["The weather is nice today.", "Hey hearth.",
                                   "What time is it?"]),
        "without": recording("without", ["The weather is nice today.", "Have you heard the "
                                         "news?", "What time is it?", "Her heart is warm."]),
    }


def detections(detector: SphinxWakeWord, wav: Path) -> list[float]:
    source = WavSource(wav)
    position = 0.0
    hits = []
    while (chunk := source.read()) is not None:
        position += chunk.seconds
        if detector.process(chunk):
            hits.append(round(position, 2))
    return hits


def test_wake_word_heard_only_where_spoken(
    wake_recordings: dict[str, Path], pocketsphinx_en_dir: Path
) -> None:
    detector = SphinxWakeWord("hey hearth", threshold=1e-20, model_dir=pocketsphinx_en_dir)
    hits = detections(detector, wake_recordings["with"])
    assert len(hits) == 1
    assert 2.0 < hits[0] < 5.0  # after the first sentence, before the last one
    assert detections(detector, wake_recordings["without"]) == []


def test_trim_silence_keeps_the_speech(piper: PiperSynthesizer) -> None:
    speech = speak(piper, "short test", 16000)
    padded = AudioChunk.concatenate([AudioChunk.silence(2.0, 16000), speech,
                                     AudioChunk.silence(2.0, 16000)])
    trimmed = trim_silence(padded, pad_ms=200)
    assert speech.seconds - 0.2 < trimmed.seconds < speech.seconds + 0.6
    assert trim_silence(AudioChunk.silence(1.0, 16000)).frames == 0


def test_slow_reader_loses_blocks_counted_not_blocking(
    pulse_server: PulseServer, piper: PiperSynthesizer, tmp_path: Path,  # noqa: F811
) -> None:
    wav = write_wav(tmp_path / "busy.wav", speak(piper, REPLY))
    mic = Microphone(pulse_server.device, queue_seconds=0.2)
    mic.start()
    try:
        # nobody reads while ~4 s of audio arrive: the bounded queue fills and the
        # callback drops blocks instead of blocking PortAudio's thread
        pulse_server.play_wav_to_mic(wav)
        assert mic.overruns > 0
        assert mic.read(timeout=1.0) is not None  # still delivering afterwards
    finally:
        mic.stop()
