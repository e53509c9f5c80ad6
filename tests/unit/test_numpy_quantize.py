"""engine.quantize and `hearth models quantize`: GGUF and llama2.c input, Q8_0 / Q4_0
output that the numpy runner reads with the same logits, metadata kept, output
deterministic, and clear errors."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.cli import quantize_cmd
from engine.errors import EngineError, ModelFormatError
from engine.numpy_runner.gguf_reader import GGUFFile
from engine.numpy_runner.loader import load_model
from engine.quantize import quantize_model
from tests.unit.numpy_models import (
    TinyConfig,
    random_weights,
    write_llama2c,
    write_llama2c_tokenizer,
    write_tiny_gguf,
)

CONFIG = TinyConfig(vocab_size=300)
TOKENS = [1, 40, 280, 7, 7, 99, 3]


@pytest.fixture(scope="module")
def f32_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quant") / "f32.gguf"
    return write_tiny_gguf(path, CONFIG, random_weights(CONFIG, seed=8), "f32")


def _logits(path: Path) -> np.ndarray:
    return load_model(path, mode="mmap").transformer.forward_batch(TOKENS, 0, all_logits=True)


@pytest.mark.parametrize("out_type,kind,error", [("q8_0", 8, 0.05), ("q4_0", 2, 0.4)])
def test_gguf_requantization(tmp_path: Path, f32_gguf: Path, out_type: str, kind: int,
                             error: float) -> None:
    out = tmp_path / f"out-{out_type}.gguf"
    result = quantize_model(f32_gguf, out, out_type)
    assert result.output == out and result.bytes_written == out.stat().st_size
    assert result.quantized == 1 + 7 * CONFIG.n_layers  # embedding and every layer matrix

    source, written = GGUFFile(f32_gguf), GGUFFile(out)
    assert written.tensors["blk.0.ffn_down.weight"].type_id == kind
    assert written.tensors["blk.0.attn_norm.weight"].type_id == 0  # norms stay F32
    assert written.metadata["general.file_type"] == {"q8_0": 7, "q4_0": 2}[out_type]
    for key in ("tokenizer.ggml.tokens", "tokenizer.chat_template", "llama.block_count"):
        assert written.metadata[key] == source.metadata[key]
        assert written.metadata_types[key] == source.metadata_types[key]

    reference = _logits(f32_gguf)
    rms = np.sqrt(np.mean((_logits(out) - reference) ** 2)) / reference.std()
    assert rms < error


def test_output_is_deterministic(tmp_path: Path, f32_gguf: Path) -> None:
    digests = set()
    for name in ("a.gguf", "b.gguf"):
        quantize_model(f32_gguf, tmp_path / name, "q8_0")
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(digests) == 1


def test_gguf_package_reads_the_output(tmp_path: Path, f32_gguf: Path) -> None:
    out = tmp_path / "q.gguf"
    quantize_model(f32_gguf, out, "q4_0")
    reader = gguf.GGUFReader(out)
    names = {t.name: t for t in reader.tensors}
    assert names["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.Q4_0
    assert [int(d) for d in names["token_embd.weight"].shape] == [CONFIG.dim, CONFIG.vocab_size]


def test_llama2c_input_with_its_tokenizer(tmp_path: Path) -> None:
    weights = random_weights(CONFIG, seed=9, tied=False)
    source = write_llama2c(tmp_path / "model.bin", CONFIG, weights, version=0)
    with pytest.raises(ModelFormatError, match=r"tokenizer\.bin"):
        quantize_model(source, tmp_path / "x.gguf", "q8_0")
    write_llama2c_tokenizer(tmp_path / "tokenizer.bin", CONFIG)
    out = tmp_path / "model-q8.gguf"
    quantize_model(source, out, "q8_0")

    written = GGUFFile(out)
    assert "output.weight" in written.tensors  # the separate classifier is kept
    tokens = written.metadata["tokenizer.ggml.tokens"]
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and "\u2581a" in tokens
    assert written.metadata["llama.context_length"] == CONFIG.seq_len
    reference = _logits(source)
    rms = np.sqrt(np.mean((_logits(out) - reference) ** 2)) / reference.std()
    assert rms < 0.05


def test_refuses_to_overwrite_its_input(f32_gguf: Path) -> None:
    with pytest.raises(EngineError):
        quantize_model(f32_gguf, f32_gguf, "q8_0")


def test_cli_command(tmp_path: Path, f32_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.gguf"
    args = argparse.Namespace(input=f32_gguf, output=out, type="q4_0")
    assert quantize_cmd.run(args, None) == 0
    assert GGUFFile(out).tensors["blk.1.attn_q.weight"].type_id == 2
    assert "q4_0" in capsys.readouterr().out.lower()
    bad = argparse.Namespace(input=tmp_path / "missing.gguf", output=out, type="q8_0")
    with pytest.raises(ModelFormatError, match=r"missing\.gguf"):
        quantize_cmd.run(bad, None)
