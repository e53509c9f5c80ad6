"""The short version of `hearth bench stt`: the default English recognizer (Whisper
tiny.en with the skills' bias) on two LibriVox clips and five spoken requests, clean and
in noise; the results files are written and the LibriVox error rate is within the
issue's target. Timings are recorded, never asserted (bench/ reports them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import stt

pytestmark = pytest.mark.slow


def test_quick_stt_bench_writes_results_within_the_librivox_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    if not stt.librivox_clips():
        pytest.skip("no LibriVox clips: apt-get install pocketsphinx-testdata")
    assert stt.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "stt-quick.json").read_text())
    (label, row), = results["recognizers"].items()
    assert label == "whisper whisper-tiny.en + bias + second pass"
    assert row["librivox"]["wer"] <= stt.TARGETS["librivox_wer"]
    for key in ("requests_clean", "requests_20db", "requests_10db", "requests_5db"):
        assert row[key]["sentences"] == 5
        assert row[key]["wer"] >= 0.0 and 0.0 <= row[key]["exact"] <= 1.0
    assert row["requests_clean"]["by_voice"]  # the per-voice breakdown is there
    assert set(row["requests_10db"]["second_pass"]) == {"replaced", "fixed", "broke", "general"}
    assert row["stt_final_ms"] >= 0 and row["final_latency_utterances"] == 2
    table = (tmp_path / "stt-quick.md").read_text()
    assert "| whisper whisper-tiny.en + bias + second pass |" in table
    assert table in capsys.readouterr().out


def test_one_configuration_on_some_sets_with_noise_suppression(tmp_path: Path) -> None:
    pytest.importorskip("webrtc_noise_gain")
    argv = ["--sets", "clean,10", "--step", "22", "--denoise", "webrtc-2", "--option",
            "second_pass_candidates=8", "--label", "check", "--out", str(tmp_path)]
    assert stt.main(argv) == 0
    row = json.loads((tmp_path / "stt-sets.json").read_text())["check"]
    for name in ("clean", "10"):
        assert row[name]["sentences"] == 5
        kinds = row[name]["by_kind"]  # open questions and skill requests apart
        assert sum(int(k["exact"].split("/")[1]) for k in kinds.values()) == 5
    assert "| check | 10 |" in (tmp_path / "stt-sets.md").read_text()


def test_noise_suppression_lowers_the_noise_and_keeps_the_speech(tmp_path: Path) -> None:
    pytest.importorskip("webrtc_noise_gain")
    speech = stt.espeak_request("set a timer for ten minutes", "en-us", 160, tmp_path)
    noisy = stt.with_noise(speech, 10, seed=1)
    suppressor = stt.NoiseSuppression(2)
    suppressor.process(stt.noise_lead(speech, 10, seed=1).samples)  # learns the room
    cleaned = np.concatenate([suppressor.process(noisy.samples[i:i + stt.BLOCK])
                              for i in range(0, noisy.frames, stt.BLOCK)])
    assert abs(len(cleaned) - noisy.frames) < 160

    def rms(samples: np.ndarray) -> float:
        return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))

    pause = slice(0, 3200)  # the 0.2 s of noise alone before the words
    assert rms(cleaned[pause]) < rms(noisy.samples[pause]) / 2  # at least 6 dB less noise
    words = slice(4800, len(cleaned) - 4800)
    assert rms(cleaned[words]) > 0.6 * rms(speech.samples[words])  # the speech kept
