"""Tokenizer file readers: GGUF metadata and llama2.c tokenizer.bin, good and broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from engine.errors import ModelFormatError
from engine.tokenizer import (
    BpeTokenizer,
    SpmTokenizer,
    load_llama2c_tokenizer,
    load_tokenizer_from_gguf,
    load_tokenizer_from_gguf_metadata,
    read_gguf_metadata,
)
from engine.tokenizer.bpe import _BYTE_CHARS

TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def write_bpe_gguf(path: Path) -> None:
    """A weightless GGUF with a tiny GPT-2 style vocabulary, written by the `gguf` package."""
    writer = gguf.GGUFWriter(str(path), "llama")
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *_BYTE_CHARS, "he", "hel"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_token_merges(["h e", "he l"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(TEMPLATE)
    writer.add_float32("test.float", 0.5)
    writer.add_array("test.ints", [1, -2, 3])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()


@pytest.fixture
def bpe_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.gguf"
    write_bpe_gguf(path)
    return path


def test_metadata_values_round_trip(bpe_gguf: Path) -> None:
    metadata = read_gguf_metadata(bpe_gguf)
    assert metadata["general.architecture"] == "llama"
    assert metadata["tokenizer.ggml.pre"] == "smollm"
    assert metadata["tokenizer.ggml.tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert metadata["tokenizer.ggml.add_bos_token"] is False
    assert metadata["tokenizer.chat_template"] == TEMPLATE
    assert metadata["test.float"] == 0.5
    assert metadata["test.ints"] == [1, -2, 3]


def test_gguf_file_gives_a_working_bpe_tokenizer(bpe_gguf: Path) -> None:
    tok = load_tokenizer_from_gguf(bpe_gguf)
    assert isinstance(tok, BpeTokenizer)
    assert (tok.bos_id, tok.eos_id, tok.add_bos) == (1, 2, False)
    assert tok.eot_ids == frozenset({0, 2})
    ids = tok.encode("<|im_start|>help", parse_special=True)
    assert [tok.token_text(i) for i in ids] == ["<|im_start|>", "hel", "p"]


def test_metadata_may_hold_numpy_arrays_and_bytes() -> None:
    tokens = [b"<unk>", b"<s>", b"</s>", "▁a".encode(), b"a"]
    tok = load_tokenizer_from_gguf_metadata(
        {
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": np.array(tokens, dtype=object),
            "tokenizer.ggml.scores": np.array([0, 0, 0, -1, -2], dtype=np.float32),
            "tokenizer.ggml.token_type": np.array([2, 3, 3, 1, 1], dtype=np.int32),
        }
    )
    assert isinstance(tok, SpmTokenizer)
    assert tok.encode("a", add_special=True) == [1, 3]


def test_add_eos_token_appends_eos_with_add_special() -> None:
    metadata = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "▁a"],
        "tokenizer.ggml.token_type": [2, 3, 3, 1],
        "tokenizer.ggml.add_eos_token": True,
    }
    tok = load_tokenizer_from_gguf_metadata(metadata)
    assert tok.encode("a", add_special=True) == [1, 3, 2]
    assert tok.encode("a") == [3]


def test_unsupported_tokenizer_model_is_named() -> None:
    with pytest.raises(ModelFormatError, match="'bert'"):
        load_tokenizer_from_gguf_metadata(
            {"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]}
        )


def test_missing_token_list_is_reported() -> None:
    with pytest.raises(ModelFormatError, match=r"tokenizer\.ggml\.tokens"):
        load_tokenizer_from_gguf_metadata({"tokenizer.ggml.model": "gpt2"})


def test_short_score_array_is_refused() -> None:
    with pytest.raises(ModelFormatError, match="scores"):
        load_tokenizer_from_gguf_metadata(
            {
                "tokenizer.ggml.model": "llama",
                "tokenizer.ggml.tokens": ["a", "b"],
                "tokenizer.ggml.scores": [0.0],
            }
        )


def test_truncated_gguf_is_refused(bpe_gguf: Path, tmp_path: Path) -> None:
    data = bpe_gguf.read_bytes()
    for cut in (10, 30, len(data) // 2, len(data) - 3):
        broken = tmp_path / f"cut{cut}.gguf"
        broken.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="GGUF"):
            read_gguf_metadata(broken)


def test_wrong_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGML" + bytes(60))
    with pytest.raises(ModelFormatError, match="not a GGUF file"):
        read_gguf_metadata(path)


def test_absurd_counts_fail_before_allocating(tmp_path: Path) -> None:
    # A header claiming 2**40 key/value pairs, then a string array of 2**40 items.
    path = tmp_path / "huge.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40) + bytes(64))
    with pytest.raises(ModelFormatError, match="metadata count"):
        read_gguf_metadata(path)
    key = b"tokenizer.ggml.tokens"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", 9, 8, 1 << 40)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body + bytes(64))
    with pytest.raises(ModelFormatError, match=r"tokenizer\.ggml\.tokens"):
        read_gguf_metadata(path)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="cannot read"):
        read_gguf_metadata(tmp_path / "nope.gguf")


# ---- llama2.c tokenizer.bin


def write_tokenizer_bin(path: Path, pieces: list[tuple[str, float]]) -> None:
    encoded = [(text.encode("utf-8"), score) for text, score in pieces]
    with path.open("wb") as f:
        f.write(struct.pack("<i", max(len(b) for b, _ in encoded)))
        for data, score in encoded:
            f.write(struct.pack("<fi", score, len(data)) + data)


LLAMA2C_PIECES = (
    [("<unk>", 0.0), ("\n<s>\n", 0.0), ("\n</s>\n", 0.0)]
    + [(f"<0x{b:02X}>", 0.0) for b in range(256)]
    + [(" ", -1.0), ("h", -2.0), ("i", -2.0), (" h", -3.0), ("hi", -1.5), (" hi", -4.0)]
)


def test_llama2c_tokenizer_encodes_with_space_prefix_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.bin"
    write_tokenizer_bin(path, LLAMA2C_PIECES)
    tok = load_llama2c_tokenizer(path, vocab_size=len(LLAMA2C_PIECES))
    ids = tok.encode("hi hi!", add_special=True)
    assert [tok.token_text(i) for i in ids] == ["<s>", "▁hi", "▁hi", "<0x21>"]
    assert tok.decode(ids) == "hi hi!"
    assert (tok.bos_id, tok.eos_id) == (1, 2)


def test_llama2c_vocab_size_larger_than_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.bin"
    write_tokenizer_bin(path, LLAMA2C_PIECES)
    with pytest.raises(ModelFormatError, match="cannot hold"):
        load_llama2c_tokenizer(path, vocab_size=1_000_000)
    with pytest.raises(ModelFormatError, match="implausible"):
        load_llama2c_tokenizer(path, vocab_size=1 << 31)


def test_llama2c_truncated_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.bin"
    write_tokenizer_bin(path, LLAMA2C_PIECES)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(ModelFormatError, match="token 264"):
        load_llama2c_tokenizer(path, vocab_size=len(LLAMA2C_PIECES))
