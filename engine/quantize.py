"""Re-quantize a llama model to Q8_0 or Q4_0 GGUF that both engines load.

Input is a GGUF (any tensor type the numpy runner reads, plus the k-quants and others
that the `gguf` package can dequantize) or a llama2.c checkpoint (with its
`tokenizer.bin` beside it). Every 2-D weight matrix is dequantized to float32 and
quantized again with the `gguf` package's reference quantizers; norms stay float32.
All metadata (tokenizer, chat template, hyperparameters) is copied; only the file type
changes. The output is byte-for-byte deterministic for a given input and type.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from engine.errors import EngineError, ModelFormatError
from engine.numpy_runner.gguf_reader import GGUFFile
from engine.numpy_runner.llama2c_reader import load_llama2c_model
from engine.numpy_runner.model import Config, Weights
from engine.numpy_runner.tensors import Tensor, dequantize

log = logging.getLogger(__name__)

QType = gguf.GGMLQuantizationType
OUTPUT_TYPES: dict[str, tuple[QType, int]] = {
    # name -> (tensor type of the matrices, general.file_type)
    "f32": (QType.F32, 0),
    "f16": (QType.F16, 1),
    "q4_0": (QType.Q4_0, 2),
    "q4_1": (QType.Q4_1, 3),
    "q8_0": (QType.Q8_0, 7),
}
# copied keys that describe the old file rather than the model
_DROPPED_KEYS = {"general.architecture", "general.alignment", "general.file_type",
                 "general.quantization_version"}


@dataclass(frozen=True)
class QuantizeResult:
    """What `quantize_model` wrote."""

    output: Path
    tensors: int
    quantized: int
    """Matrices stored in the requested type (the rest are float32 norms)."""
    bytes_written: int


def _encode(array: np.ndarray, qtype: QType) -> np.ndarray:
    """Store a float32 array as `qtype` (what GGUFWriter.add_tensor expects)."""
    if qtype == QType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if qtype == QType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(array, dtype=np.float32), qtype)


def _target_type(name: str, shape: tuple[int, ...], qtype: QType) -> QType:
    """Matrices get `qtype`; vectors and rows that do not split into blocks stay float."""
    if len(shape) < 2:
        return QType.F32
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if shape[-1] % block:
        log.info("%s: row length %d is not a multiple of %d; storing F16", name, shape[-1], block)
        return QType.F16
    return qtype


def write_gguf(
    path: Path,
    metadata: list[tuple[str, Any, int, int | None]],
    tensors: Iterator[tuple[str, np.ndarray]],
    out_type: str,
) -> QuantizeResult:
    """Write a llama GGUF with `metadata` (key, value, GGUF type id, item type id) and
    float32 `tensors`, storing matrices as `out_type` ("f32", "f16", "q8_0", "q4_0", "q4_1").

    The file is written next to `path` and renamed into place when complete.
    """
    if out_type not in OUTPUT_TYPES:
        raise EngineError(f"unknown output type {out_type!r}; choose one of {list(OUTPUT_TYPES)}")
    qtype, file_type = OUTPUT_TYPES[out_type]
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    writer = gguf.GGUFWriter(tmp, "llama")
    count = quantized = 0
    try:
        for key, value, type_id, item_type in metadata:
            if key in _DROPPED_KEYS:
                continue
            sub = gguf.GGUFValueType(item_type) if item_type is not None else None
            writer.add_key_value(key, value, gguf.GGUFValueType(type_id), sub)
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, array in tensors:
            target = _target_type(name, array.shape, qtype)
            writer.add_tensor(name, _encode(array, target), raw_dtype=target)
            count += 1
            quantized += target == qtype and len(array.shape) > 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return QuantizeResult(path, count, quantized, path.stat().st_size)


def _gguf_source(src: GGUFFile) -> tuple[list[tuple[str, Any, int, int | None]], Iterator]:
    metadata = [
        (key, value, *src.metadata_types[key]) for key, value in src.metadata.items()
    ]

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for name, info in src.tensors.items():
            if info.kind is not None:
                values = dequantize(src.tensor(name))
            else:
                values = _dequantize_other(src, name)
            yield name, values.reshape(info.shape)

    return metadata, tensors()


def _dequantize_other(src: GGUFFile, name: str) -> np.ndarray:
    """Dequantize a tensor type the runner does not read (k-quants etc.) via `gguf`."""
    info = src.tensors[name]
    try:
        qtype = QType(info.type_id)
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise ModelFormatError(f"{name} has unknown tensor type {info.type_id}") from None
    count = int(np.prod(info.shape))
    nbytes = count // block * type_size
    if count % block or info.offset + nbytes > src.file_size:
        raise ModelFormatError(f"{name} does not fit in {src.path.name}")
    raw = np.frombuffer(src.mm, np.uint8, nbytes, info.offset)
    raw = raw.reshape(*info.shape[:-1], info.shape[-1] // block * type_size)
    try:
        return gguf.quants.dequantize(raw, qtype).astype(np.float32)
    except NotImplementedError:
        raise ModelFormatError(
            f"{name} is stored as {qtype.name}, which cannot be converted"
        ) from None


def read_llama2c_tokenizer(path: Path, vocab_size: int) -> tuple[list[str], list[float]]:
    """Pieces and scores of a llama2.c `tokenizer.bin` (for writing them into a GGUF)."""
    data = path.read_bytes()
    if len(data) < 4:
        raise ModelFormatError(f"{path.name} is too short to be a llama2.c tokenizer")
    pos = 4  # max_token_length, not needed here
    pieces, scores = [], []
    for i in range(vocab_size):
        if pos + 8 > len(data):
            raise ModelFormatError(f"{path.name} is truncated at token {i} of {vocab_size}")
        score, length = struct.unpack_from("<fi", data, pos)
        pos += 8
        if length < 0 or pos + length > len(data):
            raise ModelFormatError(f"{path.name}: token {i} has an impossible length {length}")
        pieces.append(data[pos : pos + length].decode("utf-8", errors="replace"))
        scores.append(float(score))
        pos += length
    return pieces, scores


def _token_type(piece: str, index: int) -> int:
    # GGUF token types: 1 normal, 2 unknown, 3 control, 6 byte
    if index == 0:
        return 2
    if index in (1, 2):
        return 3
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return 6
    return 1


def _llama2c_metadata(
    config: Config, tokenizer: Path, name: str
) -> list[tuple[str, Any, int, int | None]]:
    u32, f32, string, array = 4, 6, 8, 9
    pieces, scores = read_llama2c_tokenizer(tokenizer, config.vocab_size)
    # llama2.c's tokenizer.bin stores pieces with SentencePiece's "▁" already turned
    # into spaces; GGUF "llama" vocabularies keep "▁"
    pieces = [p.replace(" ", "\u2581") for p in pieces]
    # ... and wraps its BOS / EOS pieces in newlines
    pieces[1:3] = [p.strip() for p in pieces[1:3]]
    c = config
    return [
        ("general.name", name, string, None),
        ("llama.context_length", c.seq_len, u32, None),
        ("llama.embedding_length", c.dim, u32, None),
        ("llama.feed_forward_length", c.hidden_dim, u32, None),
        ("llama.block_count", c.n_layers, u32, None),
        ("llama.attention.head_count", c.n_heads, u32, None),
        ("llama.attention.head_count_kv", c.n_kv_heads, u32, None),
        ("llama.rope.dimension_count", c.head_dim, u32, None),
        ("llama.rope.freq_base", c.rope_theta, f32, None),
        ("llama.attention.layer_norm_rms_epsilon", c.norm_eps, f32, None),
        ("llama.vocab_size", c.vocab_size, u32, None),
        ("tokenizer.ggml.model", "llama", string, None),
        ("tokenizer.ggml.tokens", pieces, array, string),
        ("tokenizer.ggml.scores", scores, array, f32),
        ("tokenizer.ggml.token_type", [_token_type(p, i) for i, p in enumerate(pieces)],
         array, 5),
        ("tokenizer.ggml.unknown_token_id", 0, u32, None),
        ("tokenizer.ggml.bos_token_id", 1, u32, None),
        ("tokenizer.ggml.eos_token_id", 2, u32, None),
    ]


def _llama2c_tensors(weights: Weights[Tensor, Tensor]) -> Iterator[tuple[str, np.ndarray]]:
    yield "token_embd.weight", dequantize(weights.token_embedding)
    for i, layer in enumerate(weights.layers):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", dequantize(layer.rms_att)
        yield p + "attn_q.weight", dequantize(layer.wq)
        yield p + "attn_k.weight", dequantize(layer.wk)
        yield p + "attn_v.weight", dequantize(layer.wv)
        yield p + "attn_output.weight", dequantize(layer.wo)
        yield p + "ffn_norm.weight", dequantize(layer.rms_ffn)
        yield p + "ffn_gate.weight", dequantize(layer.w1)
        yield p + "ffn_down.weight", dequantize(layer.w2)
        yield p + "ffn_up.weight", dequantize(layer.w3)
    yield "output_norm.weight", dequantize(weights.rms_final)
    if weights.classifier is not weights.token_embedding:
        yield "output.weight", dequantize(weights.classifier)


def quantize_model(
    source: Path, output: Path, out_type: str = "q8_0", tokenizer: Path | None = None
) -> QuantizeResult:
    """Write `source` (GGUF or llama2.c) as a GGUF whose matrices are `out_type`.

    A llama2.c checkpoint needs its `tokenizer.bin` (default: the one beside it).
    """
    source, output = Path(source), Path(output)
    if source.resolve() == output.resolve():
        raise EngineError("the output must be a different file from the input")
    try:
        with open(source, "rb") as f:
            is_gguf = f.read(4) == b"GGUF"
    except OSError as exc:
        raise ModelFormatError(f"cannot read {source}: {exc.strerror}") from exc
    if is_gguf:
        src = GGUFFile(source)
        try:
            if src.metadata.get("general.architecture") != "llama":
                raise ModelFormatError(f"{source.name} is not a llama-architecture model")
            metadata, tensors = _gguf_source(src)
            result = write_gguf(output, metadata, tensors, out_type)
        finally:
            src.close()
        return result
    config, weights, mm = load_llama2c_model(source)
    tokenizer = tokenizer or source.with_name("tokenizer.bin")
    if not tokenizer.exists():
        raise ModelFormatError(
            f"a llama2.c checkpoint has no vocabulary of its own; put its tokenizer.bin at "
            f"{tokenizer}"
        )
    metadata = _llama2c_metadata(config, tokenizer, source.stem)
    try:
        return write_gguf(output, metadata, _llama2c_tensors(weights), out_type)
    finally:
        del weights
        with contextlib.suppress(BufferError):
            mm.close()
