"""The short version of `hearth bench stt`: the default English recognizer (Whisper
tiny.en with the skills' bias) on two LibriVox clips and five spoken requests, clean and
in noise; the results files are written and the LibriVox error rate is within the
issue's target. Timings are recorded, never asserted (bench/ reports them)."""

from __future__ import annotations

import json
from pathlib import Path

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
