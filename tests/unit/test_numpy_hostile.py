"""Malformed model files: each must raise ModelFormatError with a clear message, and
before allocating anything in proportion to what the header claims (checked with
tracemalloc, which sees numpy's allocations too)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from engine.errors import ModelFormatError
from engine.numpy_runner.loader import load_model
from engine.quantize import write_gguf
from tests.unit.numpy_models import (
    TinyConfig,
    gguf_metadata,
    gguf_tensors,
    random_weights,
    write_llama2c,
    write_tiny_gguf,
)

CONFIG = TinyConfig(vocab_size=280)
ALLOCATION_LIMIT = 4 * 1024 * 1024
"""A hostile file is refused having allocated less than this (the tiny file is ~100 KB)."""


def refuse(path: Path, *words: str) -> str:
    """Load `path`; require ModelFormatError mentioning `words`, within the allocation limit."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError) as caught:
            load_model(path, mode="cache")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert peak < ALLOCATION_LIMIT, f"allocated {peak} bytes before refusing: {message}"
    for word in words:
        assert word.lower() in message.lower(), message
    return message


@pytest.fixture(scope="module")
def good_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("hostile") / "good.gguf"
    write_tiny_gguf(path, CONFIG, random_weights(CONFIG, seed=3), "q8_0")
    load_model(path, mode="mmap")  # the unmodified file is fine
    return path.read_bytes()


@pytest.fixture(scope="module")
def good_llama2c(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    root = tmp_path_factory.mktemp("hostile2c")
    weights = random_weights(CONFIG, seed=3)
    files = {v: write_llama2c(root / f"v{v}.bin", CONFIG, weights, version=v) for v in (0, 2)}
    for path in files.values():
        load_model(path, mode="mmap")
    return {v: p.read_bytes() for v, p in files.items()}


def _write(tmp_path: Path, data: bytes, name: str = "bad.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _tensor_info_at(data: bytes, name: str) -> int:
    """Offset of the n_dims field that follows tensor `name` in the GGUF directory."""
    key = struct.pack("<Q", len(name)) + name.encode()
    return data.index(key) + len(key)


def test_wrong_magic(tmp_path: Path, good_gguf: bytes) -> None:
    # a file starting with neither GGUF nor ak42 is read as a llama2.c v0 header
    refuse(_write(tmp_path, b"GGUX" + good_gguf[4:]))


def test_unsupported_gguf_version(tmp_path: Path, good_gguf: bytes) -> None:
    data = good_gguf[:4] + struct.pack("<I", 1) + good_gguf[8:]
    refuse(_write(tmp_path, data), "version 1")


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.05, 0.3, 0.6, 0.999])
def test_truncated_gguf(tmp_path: Path, good_gguf: bytes, fraction: float) -> None:
    cut = max(24, int(len(good_gguf) * fraction))
    refuse(_write(tmp_path, good_gguf[:cut]))


def test_absurd_tensor_and_metadata_counts(tmp_path: Path, good_gguf: bytes) -> None:
    for counts in ((2**40, 10), (10, 2**40)):
        data = good_gguf[:8] + struct.pack("<QQ", *counts) + good_gguf[24:]
        refuse(_write(tmp_path, data), "truncated")


def test_vocabulary_of_two_to_the_31(tmp_path: Path, good_gguf: bytes) -> None:
    # the token list's item count claims 2^31 strings
    key = b"tokenizer.ggml.tokens"
    at = good_gguf.index(key) + len(key) + 4 + 4  # value type, item type
    data = good_gguf[:at] + struct.pack("<Q", 2**31) + good_gguf[at + 8 :]
    refuse(_write(tmp_path, data), "tokenizer.ggml.tokens")


def test_header_vocab_size_disagrees_with_embedding(tmp_path: Path) -> None:
    metadata = [
        (k, 2**31 if k == "llama.vocab_size" else v, t, s)
        for k, v, t, s in gguf_metadata(CONFIG)
    ]
    metadata = [(k, v, 10 if k == "llama.vocab_size" else t, s) for k, v, t, s in metadata]
    path = tmp_path / "vocab.gguf"
    write_gguf(path, metadata, iter(gguf_tensors(random_weights(CONFIG))), "f32")
    refuse(path, "vocabulary", str(2**31))


def test_embedding_claiming_two_to_the_31_rows(tmp_path: Path, good_gguf: bytes) -> None:
    at = _tensor_info_at(good_gguf, "token_embd.weight")
    data = good_gguf[: at + 4 + 8] + struct.pack("<Q", 2**31) + good_gguf[at + 4 + 16 :]
    refuse(_write(tmp_path, data), "token_embd.weight")


def test_shape_not_matching_the_hyperparameters(tmp_path: Path) -> None:
    metadata = [
        (k, 96 if k == "llama.feed_forward_length" else v, t, s)
        for k, v, t, s in gguf_metadata(CONFIG)
    ]
    path = tmp_path / "shape.gguf"
    write_gguf(path, metadata, iter(gguf_tensors(random_weights(CONFIG))), "f32")
    refuse(path, "ffn_gate", "shape")


def test_unsupported_tensor_type_is_named(tmp_path: Path, good_gguf: bytes) -> None:
    at = _tensor_info_at(good_gguf, "blk.0.attn_q.weight")
    type_at = at + 4 + 2 * 8
    data = good_gguf[:type_at] + struct.pack("<I", 12) + good_gguf[type_at + 4 :]
    refuse(_write(tmp_path, data), "Q4_K", "blk.0.attn_q.weight")


def test_tensor_offset_past_the_end(tmp_path: Path, good_gguf: bytes) -> None:
    at = _tensor_info_at(good_gguf, "output_norm.weight")
    offset_at = at + 4 + 8 + 4  # n_dims, one dim, type
    data = good_gguf[:offset_at] + struct.pack("<Q", 2**50) + good_gguf[offset_at + 8 :]
    refuse(_write(tmp_path, data), "output_norm.weight")


def test_not_a_llama_model(tmp_path: Path) -> None:
    metadata = [
        (k.replace("llama.", "gpt2."), v, t, s) for k, v, t, s in gguf_metadata(CONFIG)
    ]
    path = tmp_path / "arch.gguf"
    write_gguf(path, metadata, iter(gguf_tensors(random_weights(CONFIG))), "f32")
    data = path.read_bytes().replace(b"llama", b"gpt2\0", 1)
    refuse(_write(tmp_path, data))


@pytest.mark.parametrize("version", [0, 2])
@pytest.mark.parametrize("cut", [10, 100, 300, -1000, -1])
def test_truncated_llama2c(
    tmp_path: Path, good_llama2c: dict[int, bytes], version: int, cut: int
) -> None:
    refuse(_write(tmp_path, good_llama2c[version][:cut], "bad.bin"))


@pytest.mark.parametrize("field,value,words", [
    (5, 2**31 - 1, ("vocabulary",)),  # vocab_size
    (0, 1 << 30, ("bytes",)),  # dim: the implied file size does not match
    (3, 0, ("heads",)),  # n_heads
    (2, -1, ("layers",)),  # n_layers
])
def test_llama2c_v0_lying_header(
    tmp_path: Path, good_llama2c: dict[int, bytes], field: int, value: int,
    words: tuple[str, ...],
) -> None:
    data = bytearray(good_llama2c[0])
    struct.pack_into("<i", data, 4 * field, value)
    refuse(_write(tmp_path, bytes(data), "bad.bin"), *words)


def test_llama2c_v2_bad_version_and_group(tmp_path: Path, good_llama2c: dict[int, bytes]) -> None:
    data = bytearray(good_llama2c[2])
    struct.pack_into("<i", data, 4, 7)
    refuse(_write(tmp_path, bytes(data), "bad.bin"), "version 7")
    data = bytearray(good_llama2c[2])
    struct.pack_into("<i", data, 37, 0)
    refuse(_write(tmp_path, bytes(data), "bad.bin"), "group size")
    data = bytearray(good_llama2c[2])
    struct.pack_into("<i", data, 37, 64)  # plausible, but then the file size is wrong
    refuse(_write(tmp_path, bytes(data), "bad.bin"))


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "nope.gguf")
    refuse(_write(tmp_path, b""))
