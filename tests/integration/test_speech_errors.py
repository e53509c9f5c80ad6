"""One-line errors at the speech boundary: no audio device, wrong model folders,
wrong sample rates, models not installed — each a typed error with one sentence
(and no C library log dump)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings, settings_from_dict
from app.errors import ModelNotInstalledError
from app.speech_setup import build_recognizer, build_synthesizer, choose_synthesizer
from speech.audio import AudioChunk
from speech.devices import find_device
from speech.errors import AudioDeviceError, AudioFormatError, SpeechModelError
from speech.piper_tts import PiperSynthesizer
from speech.sphinx import PocketSphinxRecognizer
from speech.vosk_stt import VoskRecognizer
from speech.wake_sphinx import SphinxWakeWord
from tests.conftest import ROOT
from tests.integration.pulse import PulseServer, pulse_server  # noqa: F401 - fixture


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_no_input_device_lists_devices_and_hints(tmp_path: Path) -> None:
    # an ALSA configuration without its plugin folders: PortAudio sees no device at all
    system = Path("/usr/share/alsa/alsa.conf").read_text()
    bare = tmp_path / "alsa.conf"
    bare.write_text("\n".join(line for line in system.splitlines() if "conf.d" not in line))
    script = ("from speech.devices import Microphone\n"
              "try:\n    Microphone()\n"
              "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env={"ALSA_CONFIG_PATH": str(bare), "PATH": "/usr/bin"},
                            timeout=60, check=False)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith("AudioDeviceError no audio input device found")
    assert "none at all" in lines[0] and "type" in lines[0]


def test_unknown_device_name_lists_what_exists(pulse_server: PulseServer) -> None:  # noqa: F811
    with pytest.raises(AudioDeviceError) as info:
        find_device("no-such-microphone-xyz", "input")
    text = one_line(info)
    assert "no-such-microphone-xyz" in text and f"{pulse_server.device} (in/out" in text
    assert "input_device" in text


def test_pocketsphinx_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError) as info:
        PocketSphinxRecognizer(tmp_path / "missing")
    assert "does not exist" in one_line(info)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechModelError) as info:
        PocketSphinxRecognizer(tmp_path / "empty")
    assert "not a PocketSphinx model folder" in one_line(info)


def test_vosk_wrong_and_damaged_folder(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                       ) -> None:
    with pytest.raises(SpeechModelError) as info:
        VoskRecognizer(tmp_path / "missing")
    assert "does not exist" in one_line(info)
    damaged = tmp_path / "damaged"
    (damaged / "am").mkdir(parents=True)
    (damaged / "am" / "final.mdl").write_bytes(b"not a model")
    with pytest.raises(SpeechModelError) as info:
        VoskRecognizer(damaged)
    assert "Vosk cannot load the model" in one_line(info)
    assert "VoskAPI" not in capfd.readouterr().err  # Kaldi's own log stayed out of the way


def test_piper_missing_voice(tmp_path: Path) -> None:
    with pytest.raises(SpeechModelError) as info:
        PiperSynthesizer(tmp_path / "voice.onnx")
    assert "does not exist" in one_line(info)


def test_wake_phrase_outside_dictionary(pocketsphinx_en_dir: Path) -> None:
    with pytest.raises(SpeechModelError) as info:
        SphinxWakeWord("hey zzqxv", model_dir=pocketsphinx_en_dir)
    assert "zzqxv" in one_line(info)


def test_recognizer_rejects_wrong_sample_rate(pocketsphinx_en_dir: Path) -> None:
    recognizer = PocketSphinxRecognizer(pocketsphinx_en_dir)
    with pytest.raises(AudioFormatError) as info:
        recognizer.accept(AudioChunk.silence(0.1, 44100))
    assert "16000 Hz" in one_line(info) and "44100 Hz" in one_line(info)


def test_catalog_model_not_installed_names_the_id(tmp_path: Path) -> None:
    settings = settings_from_dict({"general": {"data_dir": str(tmp_path)}})
    with pytest.raises(ModelNotInstalledError) as info:
        build_recognizer(settings, backend="vosk")
    assert info.value.model_id == "vosk-model-small-en-us-0.15"
    assert "hearth models install vosk-model-small-en-us-0.15" in one_line(info)
    # no Piper voice installed there: 'auto' falls back to espeak-ng
    assert choose_synthesizer(settings) == ("espeak-ng", "en-us")
    with pytest.raises(ModelNotInstalledError):
        build_synthesizer(settings, backend="piper")


def test_cli_transcribe_wrong_model_is_one_line(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    from speech.wav import write_wav

    write_wav(wav, AudioChunk.silence(0.5, 16000))
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "transcribe", str(wav), "--model",
         str(tmp_path / "nowhere")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hearth: PocketSphinx model folder {tmp_path / 'nowhere'} does not exist"
    ]


def test_settings_default_is_usable() -> None:
    assert Settings().stt.backend == "auto"
