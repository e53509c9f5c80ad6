"""`hearth say --out` and `hearth transcribe --json` end to end, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.stt import normalize
from speech.wav import read_wav
from tests.conftest import ROOT
from tests.integration.test_speech_roundtrip import MAX_WER, word_error_rate


def hearth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)


def test_say_to_file_then_transcribe_it(tmp_path: Path) -> None:
    wav = tmp_path / "said.wav"
    said = hearth("say", "**Set a timer** for ten minutes. 🎉", "--out", str(wav))
    assert said.returncode == 0, said.stderr
    audio = read_wav(wav)
    assert audio.sample_rate == 22050 and 1.0 < audio.seconds < 5.0  # Piper, emoji not read

    heard = hearth("transcribe", str(wav), "--json")
    assert heard.returncode == 0, heard.stderr
    result = json.loads(heard.stdout)
    # the automatic recognizer: Whisper, installed with the bundled models
    assert (result["backend"], result["model"]) == ("whisper", "whisper-tiny.en")
    assert normalize(result["text"]) == "set a timer for ten minutes"
    assert [w["word"] for w in result["words"]] == [w.strip('.,;:!?"()')
                                                    for w in result["text"].split()]
    assert result["audio_seconds"] == round(audio.seconds, 3)

    heard = hearth("transcribe", str(wav), "--stt", "pocketsphinx", "--json")
    assert heard.returncode == 0, heard.stderr
    result = json.loads(heard.stdout)
    assert result["backend"] == "pocketsphinx"
    assert word_error_rate("set a timer for ten minutes", result["text"]) <= MAX_WER
    assert [w["word"] for w in result["words"]] == result["text"].split()


def test_say_with_espeak_voice(tmp_path: Path) -> None:
    wav = tmp_path / "ko.wav"
    said = hearth("say", "안녕하세요", "--tts", "espeak-ng", "--voice", "ko", "--out", str(wav))
    assert said.returncode == 0, said.stderr
    assert read_wav(wav).seconds > 0.3
    bad = hearth("say", "hi", "--tts", "espeak-ng", "--voice", "xx-nope", "--out", str(wav))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "hearth: espeak-ng cannot use voice 'xx-nope': Error: The specified espeak-ng voice "
        "does not exist. (see: espeak-ng --voices)"]
