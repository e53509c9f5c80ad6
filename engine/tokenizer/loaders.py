"""Build a `Tokenizer` from GGUF metadata or from a llama2.c `tokenizer.bin`."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError
from engine.tokenizer.base import Tokenizer, TokenType, Vocabulary
from engine.tokenizer.bpe import BpeTokenizer
from engine.tokenizer.gguf_metadata import read_gguf_metadata
from engine.tokenizer.spm import SPACE, SpmTokenizer

# A vocabulary larger than this is a corrupt header, not a model.
MAX_VOCAB_SIZE = 1 << 22

_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _text_list(value: Any, key: str) -> list[str]:
    if value is None:
        raise ModelFormatError(f"the model has no {key}")
    items = list(value)
    if len(items) > MAX_VOCAB_SIZE:
        raise ModelFormatError(f"{key} has {len(items)} entries, more than any real vocabulary")
    if not items or type(items[0]) is str:
        return items  # read_gguf_metadata's lists are str already
    return [
        item.decode("utf-8", errors="replace") if isinstance(item, bytes | bytearray) else str(item)
        for item in items
    ]


def _number_list(value: Any, key: str, n: int, cast: type) -> list | None:
    if value is None:
        return None
    items = [cast(v) for v in value]
    if len(items) < n:
        raise ModelFormatError(f"{key} has {len(items)} entries for {n} tokens")
    return items[:n]


def _optional_id(metadata: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = metadata.get(key)
    return int(value) if value is not None else default


def load_tokenizer_from_gguf_metadata(metadata: Mapping[str, Any]) -> Tokenizer:
    """The tokenizer described by GGUF `tokenizer.ggml.*` metadata.

    Supports `tokenizer.ggml.model` "gpt2" (byte-level BPE, the pre-tokenizers listed
    in `engine.tokenizer.bpe.SUPPORTED_PRE_TYPES`) and "llama" (SentencePiece-style).
    """
    model = metadata.get("tokenizer.ggml.model")
    texts = _text_list(metadata.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens")
    n = len(texts)
    scores = _number_list(metadata.get("tokenizer.ggml.scores"), "tokenizer.ggml.scores", n, float)
    types = _number_list(
        metadata.get("tokenizer.ggml.token_type"), "tokenizer.ggml.token_type", n, int
    )
    vocab = Vocabulary(texts, scores, types)
    add_bos_value = metadata.get("tokenizer.ggml.add_bos_token")
    add_bos = None if add_bos_value is None else bool(add_bos_value)
    add_eos = bool(metadata.get("tokenizer.ggml.add_eos_token", False))

    if model == "gpt2":
        merges = _text_list(metadata.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges")
        return BpeTokenizer(
            vocab,
            merges,
            pre=str(metadata.get("tokenizer.ggml.pre", "") or ""),
            bos_id=_optional_id(metadata, "tokenizer.ggml.bos_token_id", 11),
            eos_id=_optional_id(metadata, "tokenizer.ggml.eos_token_id", 11),
            add_bos=add_bos,
            add_eos=add_eos,
        )
    if model == "llama":
        add_prefix = metadata.get("tokenizer.ggml.add_space_prefix")
        return SpmTokenizer(
            vocab,
            bos_id=_optional_id(metadata, "tokenizer.ggml.bos_token_id", 1),
            eos_id=_optional_id(metadata, "tokenizer.ggml.eos_token_id", 2),
            add_bos=True if add_bos is None else add_bos,
            add_eos=add_eos,
            add_space_prefix=True if add_prefix is None else bool(add_prefix),
        )
    raise ModelFormatError(
        f"unsupported tokenizer type {model!r} (tokenizer.ggml.model); "
        "Hearth reads 'gpt2' (byte-level BPE) and 'llama' (SentencePiece) vocabularies"
    )


def load_tokenizer_from_gguf(path: str | Path) -> Tokenizer:
    """The tokenizer stored in the GGUF file at `path` (reads only its metadata)."""
    return load_tokenizer_from_gguf_metadata(read_gguf_metadata(path))


def load_llama2c_tokenizer(path: str | Path, vocab_size: int) -> Tokenizer:
    """A llama2.c `tokenizer.bin` (from its export of a SentencePiece model).

    Layout: int32 max_token_length, then per token float32 score, int32 length,
    bytes. The export wrote spaces for "▁" and "\\n<s>\\n" / "\\n</s>\\n" for BOS/EOS;
    both are undone so the vocabulary encodes like the SentencePiece original
    (ids 0, 1, 2 are <unk>, <s>, </s> as in llama2.c's run.c).
    """
    path = Path(path)
    if not 3 <= vocab_size <= MAX_VOCAB_SIZE:
        raise ModelFormatError(f"{path}: implausible vocabulary size {vocab_size}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) < 4 + vocab_size * 8:
        raise ModelFormatError(
            f"{path}: {len(data)} bytes cannot hold {vocab_size} tokens (is vocab_size right?)"
        )
    pos = 4
    texts: list[str] = []
    scores: list[float] = []
    for i in range(vocab_size):
        if pos + 8 > len(data):
            raise ModelFormatError(f"{path}: truncated at token {i} of {vocab_size}")
        score, length = struct.unpack_from("<fi", data, pos)
        pos += 8
        if length < 0 or pos + length > len(data):
            raise ModelFormatError(f"{path}: token {i} claims {length} bytes past the end")
        texts.append(data[pos : pos + length].decode("utf-8", errors="replace"))
        scores.append(score)
        pos += length
    types = _llama2c_types(texts)
    texts[0], texts[1], texts[2] = "<unk>", "<s>", "</s>"
    texts = [t.replace(" ", SPACE) for t in texts]
    return SpmTokenizer(Vocabulary(texts, scores, types), bos_id=1, eos_id=2)


def _llama2c_types(texts: Sequence[str]) -> list[int]:
    types = [TokenType.BYTE if _BYTE_TOKEN.fullmatch(t) else TokenType.NORMAL for t in texts]
    types[0] = TokenType.UNKNOWN
    types[1] = types[2] = TokenType.CONTROL
    return [int(t) for t in types]
