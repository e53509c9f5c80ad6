"""A GGUF reader that trusts nothing in the header.

The file is memory-mapped; metadata is parsed with a bounds-checked cursor, and every
count, string length, tensor shape and offset is checked against the file size before
anything proportional to it is allocated. Tensors are returned as zero-copy views
(`engine.numpy_runner.tensors.Tensor`). Only GGUF v2 and v3 (64-bit counts) are read.
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelFormatError
from engine.numpy_runner.model import Config, LayerWeights, Weights
from engine.numpy_runner.tensors import (
    MappedRegion,
    Tensor,
    WeightType,
    storage_bytes,
    tensor_from_buffer,
)

GGUF_MAGIC = b"GGUF"
DEFERRED_STRINGS = 256
"""String arrays longer than this are decoded only when read (see GGUFMetadata)."""
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4

# ggml type ids of the tensor types this runner reads zero-copy
GGML_TYPES: dict[int, WeightType] = {
    0: WeightType.F32,
    1: WeightType.F16,
    2: WeightType.Q4_0,
    3: WeightType.Q4_1,
    8: WeightType.Q8_0,
}
# names of the other ggml types, for error messages
GGML_TYPE_NAMES: dict[int, str] = {
    6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K",
    14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
    20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
    27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
}

# metadata value types: id -> (struct format, size) for fixed-size scalars
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_STRING = 8
_ARRAY = 9


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lies in the file (shape in numpy order: rows first)."""

    name: str
    kind: WeightType | None
    type_id: int
    shape: tuple[int, ...]
    offset: int
    """Absolute byte offset in the file."""
    nbytes: int


@dataclass(frozen=True)
class _DeferredStrings:
    """A long string array (a vocabulary, merges) left in the file until asked for."""

    pos: int
    count: int


class GGUFMetadata(Mapping[str, Any]):
    """The key/values of a GGUF file. Long string arrays (the tokenizer's vocabulary and
    merges) are decoded from the map each time they are read, so a process that only
    runs the model never holds them as Python strings."""

    def __init__(self, mm: mmap.mmap, size: int) -> None:
        self._mm = mm
        self._size = size
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        if isinstance(value, _DeferredStrings):
            cur = _Cursor(self._mm, self._size)
            cur.pos = value.pos
            return [cur.string(key) for _ in range(value.count)]
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _Cursor:
    """Reads little-endian values from a buffer, refusing to read past its end."""

    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0
        self.last_item_type: int | None = None
        """Item type of the array `value` read last (None after a scalar)."""

    def need(self, nbytes: int, what: str) -> None:
        if nbytes < 0 or self.pos + nbytes > self.size:
            raise ModelFormatError(
                f"GGUF file is truncated or corrupt: {what} needs {nbytes} bytes at offset "
                f"{self.pos}, but the file has {self.size} bytes"
            )

    def scalar(self, fmt: str, size: int, what: str) -> Any:
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", 8, what))

    def string(self, what: str) -> str:
        length = self.u64(what)
        self.need(length, what)
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, type_id: int, what: str, depth: int = 0) -> Any:
        self.last_item_type = None
        if type_id in _SCALARS:
            fmt, size = _SCALARS[type_id]
            return self.scalar(fmt, size, what)
        if type_id == _STRING:
            return self.string(what)
        if type_id == _ARRAY and depth == 0:
            item_type = self.u32(what)
            count = self.u64(what)
            self.last_item_type = item_type
            # every item takes at least one byte (strings at least 8), so a count larger
            # than the rest of the file is a lie: refuse before building the list
            smallest = _SCALARS[item_type][1] if item_type in _SCALARS else 8
            self.need(count * smallest, f"{what} ({count} items)")
            if item_type in _SCALARS:
                fmt, size = _SCALARS[item_type]
                values = list(
                    struct.unpack_from(f"<{count}{fmt[1]}", self.buf, self.pos)
                )
                self.pos += count * size
                return values
            if item_type == _STRING and count > DEFERRED_STRINGS:
                deferred = _DeferredStrings(self.pos, count)
                for _ in range(count):  # walk (and check) the lengths, keep nothing
                    self.pos += 8 + self.u64(what)
                    self.need(0, what)
                self.last_item_type = item_type
                return deferred
            items = [self.value(item_type, what, depth + 1) for _ in range(count)]
            self.last_item_type = item_type
            return items
        raise ModelFormatError(f"GGUF metadata {what} has unknown value type {type_id}")


class GGUFFile:
    """An open GGUF file: its metadata, its tensor directory and zero-copy tensor views."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = self.path.stat().st_size
                if size < 24:
                    raise ModelFormatError(f"{self.path.name} is too short to be a GGUF file")
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ModelFormatError(f"cannot read {self.path}: {exc.strerror}") from exc
        self.file_size = size
        try:
            self._parse()
        except ModelFormatError as exc:
            self._mm.close()
            raise ModelFormatError(f"{self.path.name}: {exc}") from None

    def _parse(self) -> None:
        cur = _Cursor(self._mm, self.file_size)
        magic = self._mm[:4]
        if magic != GGUF_MAGIC:
            raise ModelFormatError(f"not a GGUF file (magic {magic!r}, expected b'GGUF')")
        cur.pos = 4
        self.version = cur.u32("version")
        if self.version not in (2, 3):
            raise ModelFormatError(f"GGUF version {self.version} is not supported (2 or 3)")
        tensor_count = cur.u64("tensor count")
        kv_count = cur.u64("metadata count")
        # each metadata entry takes >= 13 bytes, each tensor entry >= 24: check the claims
        cur.need(kv_count * 13 + tensor_count * 24, f"{kv_count} metadata entries")

        self.metadata = GGUFMetadata(self._mm, self.file_size)
        self.metadata_types: dict[str, tuple[int, int | None]] = {}
        """GGUF value type id of each key (and of its items, for arrays)."""
        for _ in range(kv_count):
            key = cur.string("metadata key")
            type_id = cur.u32(f"type of {key}")
            self.metadata._values[key] = cur.value(type_id, key)
            self.metadata_types[key] = (type_id, cur.last_item_type)

        self.alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise ModelFormatError(f"alignment {self.alignment} is not a power of two")

        infos = []
        for _ in range(tensor_count):
            name = cur.string("tensor name")
            n_dims = cur.u32(f"dimension count of {name}")
            if not 1 <= n_dims <= MAX_DIMS:
                raise ModelFormatError(f"tensor {name} has {n_dims} dimensions")
            dims = [cur.u64(f"shape of {name}") for _ in range(n_dims)]
            type_id = cur.u32(f"type of {name}")
            rel_offset = cur.u64(f"offset of {name}")
            infos.append((name, dims, type_id, rel_offset))

        data_start = cur.pos + (-cur.pos) % self.alignment
        # the header (mostly the vocabulary) is not needed again unless the tokenizer asks
        MappedRegion(self._mm, 0, data_start).release()
        self.data_offset = data_start
        self.tensors: dict[str, TensorInfo] = {}
        for name, dims, type_id, rel_offset in infos:
            # ggml lists the fastest-varying dimension first; numpy wants it last
            shape = tuple(reversed(dims))
            kind = GGML_TYPES.get(type_id)
            nbytes = 0 if kind is None else storage_bytes(kind, shape)
            offset = data_start + rel_offset
            if rel_offset % self.alignment:
                raise ModelFormatError(f"tensor {name} is not aligned")
            if offset + nbytes > self.file_size:
                raise ModelFormatError(
                    f"tensor {name} {list(shape)} needs bytes up to {offset + nbytes}, "
                    f"but the file has only {self.file_size} (truncated?)"
                )
            self.tensors[name] = TensorInfo(name, kind, type_id, shape, offset, nbytes)

    def type_name(self, name: str) -> str:
        """The ggml type name of tensor `name`, e.g. "Q4_K"."""
        info = self.tensors[name]
        if info.kind is not None:
            return info.kind.value
        return GGML_TYPE_NAMES.get(info.type_id, f"type {info.type_id}")

    def tensor(self, name: str) -> Tensor:
        """A zero-copy view of tensor `name`."""
        info = self.tensors.get(name)
        if info is None:
            raise ModelFormatError(f"{self.path.name} has no tensor {name}")
        if info.kind is None:
            raise ModelFormatError(
                f"{self.path.name}: tensor {name} is stored as {self.type_name(name)}, which "
                "the numpy engine cannot read (it reads F32, F16, Q8_0, Q4_0 and Q4_1); "
                "re-quantize with `hearth models quantize` or use the llama-cpp engine"
            )
        return tensor_from_buffer(name, info.kind, info.shape, self._mm, info.offset)

    @property
    def mm(self) -> mmap.mmap:
        return self._mm

    def close(self) -> None:
        """Unmap the file; fails harmlessly while tensor views are still alive."""
        with contextlib.suppress(BufferError):
            self._mm.close()


def _meta(gguf: GGUFFile, key: str, default: Any = None, required: bool = False) -> Any:
    arch = gguf.metadata.get("general.architecture", "llama")
    full = f"{arch}.{key}"
    if full in gguf.metadata:
        return gguf.metadata[full]
    if required:
        raise ModelFormatError(f"{gguf.path.name} has no {full} in its metadata")
    return default


def _int_meta(gguf: GGUFFile, key: str, default: int | None = None) -> int:
    value = _meta(gguf, key, default, required=default is None)
    if isinstance(value, list) or not isinstance(value, int | float):
        raise ModelFormatError(f"{gguf.path.name}: {key} is {value!r}, expected a number")
    return int(value)


def load_gguf_model(path: Path | str) -> tuple[Config, Weights[Tensor, Tensor], GGUFFile]:
    """Read a llama-architecture GGUF: its config and zero-copy views of its weights."""
    gguf = GGUFFile(path)
    try:
        arch = gguf.metadata.get("general.architecture")
        if arch != "llama":
            raise ModelFormatError(
                f"{gguf.path.name} is a {arch!r} model; the numpy engine runs only llama "
                "architecture models (use the llama-cpp engine)"
            )
        dim = _int_meta(gguf, "embedding_length")
        n_heads = _int_meta(gguf, "attention.head_count")
        if not 0 < n_heads <= dim:
            raise ModelFormatError(f"{gguf.path.name}: {n_heads} attention heads")
        head_dim = _int_meta(gguf, "attention.key_length", dim // n_heads)
        embedding = gguf.tensor("token_embd.weight")
        vocab_size = embedding.rows
        claimed_vocab = _meta(gguf, "vocab_size")
        if claimed_vocab is not None and int(claimed_vocab) != vocab_size:
            raise ModelFormatError(
                f"{gguf.path.name}: header claims a vocabulary of {claimed_vocab} but "
                f"token_embd.weight has {vocab_size} rows"
            )
        scaling = _meta(gguf, "rope.scaling.type", "none")
        scale_factor = float(_meta(gguf, "rope.scaling.factor", 1.0) or 1.0)
        if scaling not in ("none", "linear"):
            raise ModelFormatError(
                f"{gguf.path.name}: RoPE scaling {scaling!r} is not supported by the numpy engine"
            )
        config = Config(
            dim=dim,
            hidden_dim=_int_meta(gguf, "feed_forward_length"),
            n_layers=_int_meta(gguf, "block_count"),
            n_heads=n_heads,
            n_kv_heads=_int_meta(gguf, "attention.head_count_kv", n_heads),
            vocab_size=vocab_size,
            seq_len=_int_meta(gguf, "context_length", 2048),
            head_dim=head_dim,
            norm_eps=float(_meta(gguf, "attention.layer_norm_rms_epsilon", 1e-5)),
            rope_theta=float(_meta(gguf, "rope.freq_base", 10000.0)),
            rope_dim=_int_meta(gguf, "rope.dimension_count", head_dim),
            rope_freq_scale=1.0 / scale_factor if scaling == "linear" else 1.0,
        )
        config.validate()

        def matrix(name: str, rows: int, cols: int) -> Tensor:
            tensor = gguf.tensor(name)
            if tensor.shape != (rows, cols):
                raise ModelFormatError(
                    f"{gguf.path.name}: {name} has shape {list(tensor.shape)}, the header "
                    f"implies {[rows, cols]}"
                )
            return tensor

        def vector(name: str, size: int) -> Tensor:
            tensor = gguf.tensor(name)
            if tensor.shape != (size,) or tensor.kind is not WeightType.F32:
                raise ModelFormatError(f"{gguf.path.name}: {name} is not {size} float32 values")
            return tensor

        c = config
        matrix("token_embd.weight", c.vocab_size, c.dim)
        layers = []
        for i in range(c.n_layers):
            p = f"blk.{i}."
            layers.append(
                LayerWeights(
                    rms_att=vector(p + "attn_norm.weight", c.dim),
                    wq=matrix(p + "attn_q.weight", c.q_dim, c.dim),
                    wk=matrix(p + "attn_k.weight", c.kv_dim, c.dim),
                    wv=matrix(p + "attn_v.weight", c.kv_dim, c.dim),
                    wo=matrix(p + "attn_output.weight", c.dim, c.q_dim),
                    rms_ffn=vector(p + "ffn_norm.weight", c.dim),
                    w1=matrix(p + "ffn_gate.weight", c.hidden_dim, c.dim),
                    w2=matrix(p + "ffn_down.weight", c.dim, c.hidden_dim),
                    w3=matrix(p + "ffn_up.weight", c.hidden_dim, c.dim),
                )
            )
        tied = "output.weight" not in gguf.tensors
        classifier = embedding if tied else matrix("output.weight", c.vocab_size, c.dim)
        rope_factors = None
        if "rope_freqs.weight" in gguf.tensors:
            rope_factors = vector("rope_freqs.weight", (c.rope_dim or c.head_dim) // 2)
        weights: Weights[Tensor, Tensor] = Weights(
            token_embedding=embedding,
            layers=layers,
            rms_final=vector("output_norm.weight", c.dim),
            classifier=classifier,
            rope_factors=rope_factors,
        )
    except ModelFormatError:
        gguf.close()
        raise
    return config, weights, gguf
