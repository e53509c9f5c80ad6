"""`hearth ask` with the bundled stack and no audio devices: a spoken question from a WAV
file gives the JSON result (transcript, reply, timings) and a spoken reply in OUT.wav;
a typed question streams its reply to stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.file_mode import RESULT_KEYS
from speech.audio import AudioChunk
from speech.piper_tts import PiperSynthesizer
from speech.wav import read_wav, write_wav
from tests.integration.spoken_answer import cities_heard

pytestmark = pytest.mark.usefixtures("restore_logging")  # main() adds log handlers


@pytest.fixture
def config(tmp_path: Path, smollm2_gguf: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "[engine]\n"
        'backend = "llama-cpp"\n'
        f'model = "{smollm2_gguf}"\n'
        "[stt]\n"
        'backend = "pocketsphinx"\n'
        "[tts]\n"
        'backend = "piper"\n'
        "[history]\n"
        f'path = "{tmp_path / "history.sqlite3"}"\n'
    )
    return path


def test_ask_wav_json_runs_a_full_turn_without_devices(
    config: Path, tmp_path: Path, piper_voice_onnx: Path, pocketsphinx_en_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    piper = PiperSynthesizer(piper_voice_onnx, deterministic=True)  # same audio every run
    speech = AudioChunk.concatenate(list(piper.synthesize("What is the capital of France?")))
    question = write_wav(tmp_path / "q.wav", speech)
    out = tmp_path / "a.wav"
    code = main(["--config", str(config), "-q", "ask", "--wav", str(question), "--out", str(out),
                 "--json", "--temperature", "0", "--max-tokens", "40"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert tuple(result) == RESULT_KEYS
    assert "capital" in result["transcript"] and "france" in result["transcript"]
    assert "paris" in result["reply"].lower()
    assert result["engine"] == "llama-cpp" and result["recognizer"] == "pocketsphinx"
    assert 0 <= result["stt_final_ms"] <= result["first_token_ms"] <= result["first_audio_ms"]
    assert result["first_audio_ms"] <= result["total_ms"]
    assert result["generated_tokens"] > 0 and result["tokens_per_second"] > 0
    reply_audio = read_wav(out)
    assert reply_audio.seconds == pytest.approx(result["reply_audio_seconds"], abs=0.05)
    assert reply_audio.seconds > 0.5
    # the reply file is the spoken answer
    heard, judged, free = cities_heard(pocketsphinx_en_dir, reply_audio, result["reply"],
                                       tmp_path)
    assert heard == ["paris"], (result["reply"], judged, free)
    # and the turn is in the history
    assert main(["--config", str(config), "history", "list"]) == 0
    assert "capital of france" in capsys.readouterr().out


def test_ask_text_streams_the_reply(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(config), "-q", "ask", "--text", "What is the capital of France?",
                 "--temperature", "0", "--max-tokens", "40"])
    assert code == 0
    assert "Paris" in capsys.readouterr().out
