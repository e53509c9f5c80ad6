"""Reader for llama2.c checkpoints (karpathy/llama2.c `export.py`).

- v0 ("legacy"): seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
  seq_len) then float32 weights; a negative vocab_size means the classifier is stored
  separately at the end, after the (unused) RoPE tables.
- v1: magic "ak42", version 1, the seven ints, a shared-classifier byte, padding to 256
  bytes, then float32 norms followed by float32 matrices.
- v2: like v1 plus an int32 group size in the header; norms float32, matrices as int8
  with one float32 scale per group (each tensor: its int8 values, then its scales).

The expected file size is computed from the header and compared with the real one before
any weight is viewed, so a lying header is a ModelFormatError, not a huge allocation.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from engine.errors import ModelFormatError
from engine.numpy_runner.model import Config, LayerWeights, Weights
from engine.numpy_runner.tensors import Tensor, WeightType, storage_bytes, tensor_from_buffer

LLAMA2C_MAGIC = 0x616B3432  # "ak42"
HEADER_V1 = 256
# llama2.c's own defaults: run.c has them hard-coded
NORM_EPS = 1e-5
ROPE_THETA = 10000.0


def is_llama2c_v1_or_v2(head: bytes) -> bool:
    return len(head) >= 4 and struct.unpack_from("<I", head)[0] == LLAMA2C_MAGIC


class _Layout:
    """Hands out consecutive tensors from the file, refusing to pass its end."""

    def __init__(self, mm: mmap.mmap, size: int, offset: int, name: str) -> None:
        self.mm, self.size, self.offset, self.name = mm, size, offset, name

    def take(
        self, what: str, kind: WeightType, shape: tuple[int, ...], group_size: int = 0
    ) -> Tensor:
        nbytes = storage_bytes(kind, shape, group_size)
        if self.offset + nbytes > self.size:
            raise ModelFormatError(
                f"{self.name} is truncated: {what} needs bytes up to {self.offset + nbytes}, "
                f"the file has {self.size}"
            )
        tensor = tensor_from_buffer(what, kind, shape, self.mm, self.offset, group_size)
        self.offset += nbytes
        return tensor

    def skip(self, nbytes: int) -> None:
        self.offset += nbytes


def _config(ints: tuple[int, ...]) -> tuple[Config, bool]:
    dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len = ints
    shared = vocab_size > 0
    if n_heads <= 0 or dim % n_heads:
        raise ModelFormatError(f"implausible llama2.c header: dim {dim}, {n_heads} heads")
    config = Config(
        dim=dim,
        hidden_dim=hidden_dim,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        vocab_size=abs(vocab_size),
        seq_len=seq_len,
        head_dim=dim // n_heads,
        norm_eps=NORM_EPS,
        rope_theta=ROPE_THETA,
    )
    config.validate()
    return config, shared


def _expected_size(config: Config, header: int, shared: bool, version: int, gs: int) -> int:
    c = config
    kind = WeightType.I8_GROUPS if version == 2 else WeightType.F32
    matrices = [(c.vocab_size, c.dim)]
    matrices += [(c.q_dim, c.dim), (c.kv_dim, c.dim), (c.kv_dim, c.dim), (c.dim, c.q_dim)] * (
        c.n_layers
    )
    matrices += [(c.hidden_dim, c.dim), (c.dim, c.hidden_dim), (c.hidden_dim, c.dim)] * (
        c.n_layers
    )
    if not shared:
        matrices.append((c.vocab_size, c.dim))
    total = header + 4 * (2 * c.n_layers * c.dim + c.dim)
    total += sum(storage_bytes(kind, shape, gs) for shape in matrices)
    if version == 0:
        total += 4 * c.seq_len * c.head_dim  # the legacy RoPE cos/sin tables
    return total


def load_llama2c_model(path: Path | str) -> tuple[Config, Weights[Tensor, Tensor], mmap.mmap]:
    """Read a llama2.c checkpoint (v0, v1 or v2): config and zero-copy weight views."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size < 7 * 4:
                raise ModelFormatError(f"{path.name} is too short to be a llama2.c checkpoint")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        config, weights = _read(mm, size, path.name)
    except ModelFormatError:
        mm.close()
        raise
    return config, weights, mm


def _read(mm: mmap.mmap, size: int, name: str) -> tuple[Config, Weights[Tensor, Tensor]]:
    group_size = 0
    if is_llama2c_v1_or_v2(mm[:4]):
        if size < HEADER_V1:
            raise ModelFormatError(f"{name} is truncated inside its 256-byte header")
        version = struct.unpack_from("<i", mm, 4)[0]
        if version not in (1, 2):
            raise ModelFormatError(f"{name}: llama2.c version {version} is not supported")
        config, _ = _config(struct.unpack_from("<7i", mm, 8))
        shared = bool(mm[36])
        if version == 2:
            group_size = struct.unpack_from("<i", mm, 37)[0]
            if not 0 < group_size <= 4096:
                raise ModelFormatError(f"{name}: implausible group size {group_size}")
        header = HEADER_V1
    else:
        version = 0
        config, shared = _config(struct.unpack_from("<7i", mm, 0))
        header = 7 * 4
    expected = _expected_size(config, header, shared, version, group_size)
    if size != expected:
        raise ModelFormatError(
            f"{name}: the header describes a {expected}-byte llama2.c v{version} checkpoint "
            f"but the file has {size} bytes"
        )
    c = config
    at = _Layout(mm, size, header, name)
    f32 = WeightType.F32
    mat = WeightType.I8_GROUPS if version == 2 else f32
    L = c.n_layers

    def stack(what: str, kind: WeightType, shape: tuple[int, ...]) -> list[Tensor]:
        return [at.take(f"{what}[{i}]", kind, shape, group_size) for i in range(L)]

    if version == 0:
        embedding = at.take("token_embedding", f32, (c.vocab_size, c.dim))
        rms_att = stack("rms_att", f32, (c.dim,))
        wq = stack("wq", f32, (c.q_dim, c.dim))
        wk = stack("wk", f32, (c.kv_dim, c.dim))
        wv = stack("wv", f32, (c.kv_dim, c.dim))
        wo = stack("wo", f32, (c.dim, c.q_dim))
        rms_ffn = stack("rms_ffn", f32, (c.dim,))
        w1 = stack("w1", f32, (c.hidden_dim, c.dim))
        w2 = stack("w2", f32, (c.dim, c.hidden_dim))
        w3 = stack("w3", f32, (c.hidden_dim, c.dim))
        rms_final = at.take("rms_final", f32, (c.dim,))
        at.skip(4 * c.seq_len * c.head_dim)
    else:
        rms_att = stack("rms_att", f32, (c.dim,))
        rms_ffn = stack("rms_ffn", f32, (c.dim,))
        rms_final = at.take("rms_final", f32, (c.dim,))
        embedding = at.take("token_embedding", mat, (c.vocab_size, c.dim), group_size)
        wq = stack("wq", mat, (c.q_dim, c.dim))
        wk = stack("wk", mat, (c.kv_dim, c.dim))
        wv = stack("wv", mat, (c.kv_dim, c.dim))
        wo = stack("wo", mat, (c.dim, c.q_dim))
        w1 = stack("w1", mat, (c.hidden_dim, c.dim))
        w2 = stack("w2", mat, (c.dim, c.hidden_dim))
        w3 = stack("w3", mat, (c.hidden_dim, c.dim))
    classifier = embedding if shared else at.take("wcls", mat, (c.vocab_size, c.dim), group_size)
    layers = [
        LayerWeights(rms_att[i], wq[i], wk[i], wv[i], wo[i], rms_ffn[i], w1[i], w2[i], w3[i])
        for i in range(L)
    ]
    return config, Weights(embedding, layers, rms_final, classifier)
