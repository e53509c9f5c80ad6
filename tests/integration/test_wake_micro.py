"""The hands-free ear with its real models: microWakeWord hears "okay nabu" spoken by
espeak-ng voices and not other speech; Silero VAD finds where speech starts and ends;
`hearth listen --wake --json` reports both for a recording."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from speech.audio import AudioChunk
from speech.registry import create_synthesizer
from speech.resample import resample
from speech.vad import Endpointer, VadEventKind
from speech.wake_micro import MicroWakeWordDetector
from speech.wake_sphinx import SphinxWakeWord
from speech.wav import read_wav, write_wav

RATE = 16000


def spoken(tmp_path: Path, text: str, voice: str = "en-us", speed: int = 160) -> AudioChunk:
    path = tmp_path / f"{abs(hash((text, voice, speed)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                   check=True)
    return resample(read_wav(path), RATE)


def padded(*parts: AudioChunk, gap: float = 1.0) -> AudioChunk:
    pieces = [AudioChunk.silence(gap, RATE)]
    for part in parts:
        pieces += [part, AudioChunk.silence(gap, RATE)]
    return AudioChunk.concatenate(pieces)


def feed(detector: MicroWakeWordDetector | SphinxWakeWord, audio: AudioChunk,
         block: int = 480) -> list:
    found = []
    for i in range(0, audio.frames, block):
        detection = detector.detect(AudioChunk(audio.samples[i:i + block], RATE))
        if detection is not None:
            found.append(detection)
    return found


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 120), ("en-gb", 175),
                                              ("en-gb-scotland", 150)])
def test_micro_hears_okay_nabu_once_where_it_was_said(tmp_path: Path, voice: str,
                                                       speed: int) -> None:
    phrase = spoken(tmp_path, "Okay Nabu", voice, speed)
    detector = MicroWakeWordDetector("okay nabu")
    found = feed(detector, padded(phrase))
    detector.close()
    assert len(found) == 1
    hit = found[0]
    assert hit.wake_word == "okay nabu" and hit.probability > detector.cutoff
    # said from 1.0 s to 1.0 + its length; detected at its end
    assert 1.0 <= hit.end_seconds <= 1.0 + phrase.seconds + 0.5
    assert 0.7 <= hit.start_seconds <= 1.0 + phrase.seconds / 2


def test_micro_ignores_other_speech_and_strict_mode_demands_more(tmp_path: Path) -> None:
    other = spoken(tmp_path, "Okay, now tell me about the weather in Nebraska and Canada, "
                             "and hey, what about Jarvis?")
    detector = MicroWakeWordDetector("okay nabu")
    assert feed(detector, padded(other)) == []
    assert detector.current_cutoff() == detector.cutoff == 0.85  # clean: the model's own
    detector.set_strict(True)
    assert detector.current_cutoff() == pytest.approx(0.925)
    detector.close()


def test_sphinx_spotter_reports_where_the_phrase_was(piper_voice_onnx: Path) -> None:
    voice = create_synthesizer("piper", piper_voice_onnx)
    said = resample(AudioChunk.concatenate(list(voice.synthesize("Hey computer.",
                                                                  threading.Event()))), RATE)
    voice.close()
    detector = SphinxWakeWord("hey computer", threshold=1e-20)
    found = feed(detector, padded(said))
    detector.close()
    assert len(found) == 1
    assert found[0].probability is None
    assert 0.8 <= found[0].start_seconds < found[0].end_seconds <= 3.5


def test_silero_endpointer_finds_each_utterance_and_its_end(tmp_path: Path) -> None:
    one = spoken(tmp_path, "what time is it")
    two = spoken(tmp_path, "turn on the kitchen light please")
    audio = padded(one, two, gap=1.5)
    noise = (np.random.default_rng(1).normal(0, 300, audio.frames)).astype(np.int16)
    audio = AudioChunk((audio.samples.astype(np.int32) + noise).clip(-32768, 32767)
                       .astype(np.int16), RATE)
    endpointer = Endpointer(RATE, engine="silero", end_silence_ms=400)
    assert endpointer.engine == "silero"
    events = []
    for i in range(0, audio.frames, 480):
        events += endpointer.process(AudioChunk(audio.samples[i:i + 480], RATE))
    ends = [e for e in events if e.kind == VadEventKind.SPEECH_END]
    starts = [e for e in events if e.kind == VadEventKind.SPEECH_START]
    assert len(starts) == len(ends) == 2
    true_ends = [1.5 + one.seconds, 3.0 + one.seconds + two.seconds]
    for event, true_end in zip(ends, true_ends, strict=True):
        # espeak-ng's files end with ~0.1-0.3 s of their own silence
        assert true_end - 0.45 <= event.speech_seconds <= true_end + 0.1
        assert event.stream_seconds - event.speech_seconds == pytest.approx(0.416, abs=0.04)
    assert starts[0].speech_seconds == pytest.approx(1.5, abs=0.25)


def test_listen_command_prints_detections_and_speech(tmp_path: Path) -> None:
    wav = tmp_path / "in.wav"
    write_wav(wav, padded(spoken(tmp_path, "Okay Nabu", "en-gb", 150),
                          spoken(tmp_path, "what is the weather like")))
    result = subprocess.run([sys.executable, "-m", "app.cli", "listen", str(wav), "--wake",
                             "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [d["wake_word"] for d in out["detections"]] == ["okay nabu"]
    assert set(out["detections"][0]) == {"wake_word", "start", "end", "probability"}
    assert len(out["speech"]) == 2 and out["vad"] == "silero"
    assert out["speech"][0]["start"] < out["detections"][0]["end"] < out["speech"][1]["start"]
