"""The llama transformer in numpy, in the shape of llama2.c's run.c.

`Config` holds the hyperparameters, `Weights` the arrays (each with its shape),
`RunState` the activation buffers and the KV cache (allocated once), and `Transformer`
runs `forward(token, pos) -> logits` for one token or `forward_batch(tokens, start_pos)`
for a prompt, where every layer processes all tokens as one matrix product.

There is one forward pass, `Transformer._layers`. What it computes with is pluggable,
as run.c's `matmul` is: the weight matrices (`MatrixLike`, chosen by the memory
planner) and the `Kernels` for normalisation, RoPE, attention and SwiGLU. The fast path
uses `NumpyKernels`; the reference mode uses llama.cpp's rounding order
(`engine.numpy_runner.replica`), so the bit-exact test runs this same code.

RoPE rotates consecutive pairs (x[2i], x[2i+1]), llama.cpp's "normal" style: GGUF files
converted from Hugging Face and llama2.c checkpoints both store Q/K rows permuted for it.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from engine.errors import ContextOverflowError, ModelFormatError

M = TypeVar("M")
"""What a matrix is: a file `Tensor` (from a reader) or a `Matrix` (after memory planning)."""
V = TypeVar("V")
"""What a vector (norm weights) is: a file `Tensor` or a float32 array."""


@dataclass(frozen=True)
class Config:
    """Hyperparameters of a llama-architecture model."""

    dim: int
    """Width of the residual stream."""
    hidden_dim: int
    """Width of the feed-forward layer."""
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    """Longest context the model was trained for."""
    head_dim: int
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_dim: int = 0
    """Dimensions of each head that RoPE rotates (0 = all of them)."""
    rope_freq_scale: float = 1.0
    """Linear RoPE scaling: positions are multiplied by this."""

    def validate(self) -> None:
        """Raise ModelFormatError for hyperparameters no llama model can have."""
        checks = [
            (self.dim > 0 and self.hidden_dim > 0, "non-positive width"),
            (0 < self.n_layers <= 1024, f"{self.n_layers} layers"),
            (0 < self.n_kv_heads <= self.n_heads, f"{self.n_kv_heads} kv heads"),
            (self.n_kv_heads > 0 and self.n_heads % self.n_kv_heads == 0,
             "heads not a multiple of kv heads"),
            (0 < self.vocab_size < 2**24, f"vocabulary of {self.vocab_size}"),
            (self.head_dim > 0 and self.head_dim % 2 == 0, f"head size {self.head_dim}"),
            (0 <= self.rope_dim <= self.head_dim and self.rope_dim % 2 == 0, "rope size"),
            (self.seq_len > 0, f"context of {self.seq_len}"),
            (self.norm_eps > 0 and self.rope_theta > 0, "eps or rope theta"),
        ]
        for ok, what in checks:
            if not ok:
                raise ModelFormatError(f"implausible model hyperparameters: {what}")

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim


@dataclass
class LayerWeights(Generic[M, V]):
    """One transformer block. Matrices are (out, in): y = W @ x."""

    rms_att: V  # (dim,)
    wq: M  # (n_heads * head_dim, dim)
    wk: M  # (n_kv_heads * head_dim, dim)
    wv: M  # (n_kv_heads * head_dim, dim)
    wo: M  # (dim, n_heads * head_dim)
    rms_ffn: V  # (dim,)
    w1: M  # (hidden_dim, dim)  gate
    w2: M  # (dim, hidden_dim)  down
    w3: M  # (hidden_dim, dim)  up


@dataclass
class Weights(Generic[M, V]):
    """All weights of the model."""

    token_embedding: M  # (vocab_size, dim)
    layers: list[LayerWeights[M, V]]
    rms_final: V  # (dim,)
    classifier: M  # (vocab_size, dim); the same object as token_embedding when tied
    rope_factors: V | None = None  # (rope_dim // 2,) divides each RoPE frequency (Llama 3)


class MatrixLike:
    """What the forward pass needs from a weight matrix (see engine.numpy_runner.memory)."""

    rows: int
    cols: int

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - protocol
        """out (T, rows) = x (T, cols) @ W.T"""
        raise NotImplementedError

    def gather_rows(self, ids: Sequence[int], out: np.ndarray) -> None:  # pragma: no cover
        """out (len(ids), cols) = W[ids]"""
        raise NotImplementedError


class RunState:
    """Activation buffers for up to `batch` tokens at once and the KV cache, allocated once."""

    def __init__(self, config: Config, context_length: int, batch: int) -> None:
        c = config
        self.batch = batch
        self.context_length = context_length
        # rows beyond the longest batch actually run are never touched, so cost nothing
        self.x = lazy_zeros((batch, c.dim))  # residual stream
        self.xb = lazy_zeros((batch, c.dim))  # normed input of a sub-block
        self.xb2 = lazy_zeros((batch, c.dim))  # output of a sub-block
        self.q = lazy_zeros((batch, c.q_dim))
        self.k = lazy_zeros((batch, c.kv_dim))
        self.v = lazy_zeros((batch, c.kv_dim))
        self.att_out = lazy_zeros((batch, c.q_dim))  # heads concatenated
        self.hb = lazy_zeros((batch, c.hidden_dim))  # gate
        self.hb2 = lazy_zeros((batch, c.hidden_dim))  # up, then SwiGLU output
        self.logits = lazy_zeros((1, c.vocab_size))
        # (layer, kv head, position, head_dim): a head's keys are contiguous per position.
        # float16 like llama.cpp's default cache: half the memory, and the same roundings
        shape = (c.n_layers, c.n_kv_heads, context_length, c.head_dim)
        self.key_cache = lazy_zeros(shape, np.float16)
        self.value_cache = lazy_zeros(shape, np.float16)

    @property
    def kv_cache_bytes(self) -> int:
        return int(self.key_cache.nbytes + self.value_cache.nbytes)


def lazy_zeros(shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A zero array whose memory is committed page by page as it is written.

    An anonymous mmap rather than np.zeros: numpy asks for transparent huge pages on
    large arrays, which would make the first key written to each layer commit 2 MB.
    """
    count = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(buffer, dtype, count).reshape(shape)


def kv_cache_bytes(config: Config, context_length: int) -> int:
    """Bytes the KV cache of `context_length` positions takes (float16, as `RunState`
    allocates it)."""
    return 2 * np.dtype(np.float16).itemsize * config.n_layers * config.kv_dim * context_length


def rope_tables(
    config: Config, context_length: int, factors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of every (position, frequency), each (context_length, rope_dim // 2)."""
    rope_dim = config.rope_dim or config.head_dim
    inv_freq = config.rope_theta ** (-np.arange(0, rope_dim, 2, dtype=np.float64) / rope_dim)
    if factors is not None:
        inv_freq = inv_freq / np.asarray(factors, dtype=np.float64)
    positions = np.arange(context_length, dtype=np.float64) * config.rope_freq_scale
    angles = np.outer(positions, inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def causal_mask(n: int, pos: int) -> np.ndarray:
    """(n, pos + n): 0 where query t (at position pos + t) may see a cache position,
    -inf after it."""
    return np.triu(np.full((n, pos + n), -np.inf, np.float32), k=pos + 1)


class Kernels:
    """The operations of a layer besides the matrix products, which a `MatrixLike` does.

    One set per way of computing: `NumpyKernels` (fast, BLAS order) here, and
    `engine.numpy_runner.replica.GgmlX86Kernels` (llama.cpp's x86 rounding order).
    Built once per `Transformer` for its config and context (RoPE tables, scales).
    """

    def __init__(self, config: Config, context_length: int,
                 rope_factors: np.ndarray | None) -> None:
        self.config = config

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
        """out (T, dim) = x / sqrt(mean(x^2) + eps) * weight, row by row."""
        raise NotImplementedError  # pragma: no cover - interface

    def rope(self, x: np.ndarray, pos: int) -> None:
        """Rotate the heads of x (T, heads, head_dim), at positions pos.., in place."""
        raise NotImplementedError  # pragma: no cover - interface

    def attend(self, q: np.ndarray, keys: np.ndarray, values: np.ndarray, pos: int,
               out: np.ndarray) -> None:
        """out (T, n_heads * head_dim) = softmax(q k^T / sqrt(head_dim), causal) v for
        queries q (T, n_heads, head_dim) at positions pos.. over the float16 cache
        keys, values (n_kv_heads, pos + T, head_dim)."""
        raise NotImplementedError  # pragma: no cover - interface

    def swiglu(self, gate: np.ndarray, up: np.ndarray, out: np.ndarray) -> None:
        """out = silu(gate) * up (out may be `up`; `gate` may be overwritten)."""
        raise NotImplementedError  # pragma: no cover - interface


class NumpyKernels(Kernels):
    """The fast path: numpy and BLAS, rounded like llama.cpp where it is cheap (float16
    queries and attention weights against the float16 cache)."""

    def __init__(self, config: Config, context_length: int,
                 rope_factors: np.ndarray | None) -> None:
        super().__init__(config, context_length, rope_factors)
        self.cos, self.sin = rope_tables(config, context_length, rope_factors)
        self.rope_dim = config.rope_dim or config.head_dim
        self.scale = np.float32(1.0 / np.sqrt(config.head_dim))

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
        mean_square = np.einsum("ij,ij->i", x, x) / x.shape[1]
        inverse = 1.0 / np.sqrt(mean_square + self.config.norm_eps)
        np.multiply(x, inverse.astype(np.float32)[:, None], out=out)
        out *= weight

    def rope(self, x: np.ndarray, pos: int) -> None:
        # consecutive pairs (x[2i], x[2i+1]) of the first rope_dim values of each head
        n, rope_dim = x.shape[0], self.rope_dim
        pairs = x[:, :, :rope_dim].reshape(n, x.shape[1], rope_dim // 2, 2)
        even = pairs[..., 0].copy()
        odd = pairs[..., 1]
        c = self.cos[pos : pos + n, None, :]
        s = self.sin[pos : pos + n, None, :]
        pairs[..., 0] = even * c - odd * s
        pairs[..., 1] = even * s + odd * c

    def attend(self, q: np.ndarray, keys: np.ndarray, values: np.ndarray, pos: int,
               out: np.ndarray) -> None:
        c = self.config
        n, end = q.shape[0], pos + q.shape[0]
        group = c.n_heads // c.n_kv_heads
        # grouped-query attention: the `group` query heads sharing a kv head are
        # stacked so that each kv head is one matrix product
        if n == 1:
            queries = q.reshape(c.n_kv_heads, group, c.head_dim)
        else:
            queries = (
                q.reshape(n, c.n_kv_heads, group, c.head_dim)
                .transpose(1, 2, 0, 3)
                .reshape(c.n_kv_heads, group * n, c.head_dim)
            )
        # llama.cpp multiplies the float16 cache with float16-rounded queries
        queries = queries.astype(np.float16).astype(np.float32)
        scores = np.matmul(queries, keys.astype(np.float32).transpose(0, 2, 1))
        scores *= self.scale
        if n > 1:
            scores.reshape(c.n_kv_heads, group, n, end)[...] += causal_mask(n, pos)
        # softmax over positions
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        # weighted sum of values (llama.cpp rounds the weights to float16 for the
        # product with its float16 values), heads back in order
        scores = scores.astype(np.float16).astype(np.float32)
        mixed = np.matmul(scores, values.astype(np.float32))  # (n_kv, group * n, head_dim)
        if n == 1:
            out[0] = mixed.reshape(-1)
        else:
            out.reshape(n, c.n_kv_heads, group, c.head_dim)[...] = mixed.reshape(
                c.n_kv_heads, group, n, c.head_dim
            ).transpose(2, 0, 1, 3)

    def swiglu(self, gate: np.ndarray, up: np.ndarray, out: np.ndarray) -> None:
        np.multiply(up, gate, out=out)
        np.negative(gate, out=gate)
        np.exp(gate, out=gate)
        gate += 1.0
        out /= gate  # = gate * up / (1 + exp(-gate)) = silu(gate) * up


class Transformer:
    """A loaded model: config, planned weights, the run state and the kernels."""

    def __init__(
        self,
        config: Config,
        weights: Weights[MatrixLike, np.ndarray],
        context_length: int,
        batch: int = 64,
        kernels: type[Kernels] = NumpyKernels,
    ) -> None:
        self.config = config
        self.weights = weights
        self.context_length = min(context_length, config.seq_len) or config.seq_len
        self.state = RunState(config, self.context_length, max(1, batch))
        self.kernels = kernels(config, self.context_length, weights.rope_factors)

    def forward(self, token: int, pos: int) -> np.ndarray:
        """Logits (vocab_size,) for the token after `token` at position `pos`."""
        return self.forward_batch([token], pos)

    def forward_batch(
        self, tokens: Sequence[int], start_pos: int, all_logits: bool = False
    ) -> np.ndarray:
        """Run `tokens` at positions start_pos.. and fill the KV cache.

        Returns the logits after the last token (vocab_size,), a view reused by the next
        call, or with `all_logits` a new (len(tokens), vocab_size) array.
        """
        if not tokens:
            raise ValueError("forward_batch needs at least one token")
        if start_pos + len(tokens) > self.context_length:
            raise ContextOverflowError(
                f"{start_pos + len(tokens)} tokens do not fit the context of "
                f"{self.context_length}"
            )
        vocab = self.config.vocab_size
        if any(not 0 <= t < vocab for t in tokens):
            raise ValueError(f"token id outside the vocabulary of {vocab}")
        rows = []
        batch = self.state.batch
        with np.errstate(over="ignore"):
            for begin in range(0, len(tokens), batch):
                chunk = tokens[begin : begin + batch]
                self._layers(chunk, start_pos + begin)
                if all_logits:
                    rows.append(self._classify(len(chunk), all_rows=True).copy())
            if all_logits:
                return np.concatenate(rows)
            return self._classify(len(chunk), all_rows=False)[0]

    def _layers(self, tokens: Sequence[int], pos: int) -> None:
        """Push a chunk of tokens through every layer; the residual is left in state.x."""
        c, w, s, kernels = self.config, self.weights, self.state, self.kernels
        n = len(tokens)
        end = pos + n
        x, xb, xb2 = s.x[:n], s.xb[:n], s.xb2[:n]
        q, k, v = s.q[:n], s.k[:n], s.v[:n]
        att_out, hb, hb2 = s.att_out[:n], s.hb[:n], s.hb2[:n]
        q_heads = q.reshape(n, c.n_heads, c.head_dim)
        k_heads = k.reshape(n, c.n_kv_heads, c.head_dim)
        v_heads = v.reshape(n, c.n_kv_heads, c.head_dim)

        # token embeddings
        w.token_embedding.gather_rows(tokens, x)
        for layer, key_cache, value_cache in zip(w.layers, s.key_cache, s.value_cache,
                                                 strict=True):
            # attention rmsnorm
            kernels.rmsnorm(x, layer.rms_att, xb)
            # q, k, v projections
            layer.wq.matmul(xb, q)
            layer.wk.matmul(xb, k)
            layer.wv.matmul(xb, v)
            # RoPE on q and k
            kernels.rope(q_heads, pos)
            kernels.rope(k_heads, pos)
            # this chunk's keys and values into the (float16) cache
            key_cache[:, pos:end] = k_heads.transpose(1, 0, 2)
            value_cache[:, pos:end] = v_heads.transpose(1, 0, 2)
            # attention of each query over the cache up to its own position
            kernels.attend(q_heads, key_cache[:, :end], value_cache[:, :end], pos, att_out)
            # output projection and residual
            layer.wo.matmul(att_out, xb2)
            x += xb2
            # ffn rmsnorm
            kernels.rmsnorm(x, layer.rms_ffn, xb)
            # SwiGLU feed-forward: w2(silu(w1 x) * w3 x) and residual
            layer.w1.matmul(xb, hb)
            layer.w3.matmul(xb, hb2)
            kernels.swiglu(hb, hb2, hb2)
            layer.w2.matmul(hb2, xb2)
            x += xb2

    def _classify(self, n: int, all_rows: bool) -> np.ndarray:
        """Final rmsnorm and classifier for the last row (or all rows) of state.x."""
        s, w = self.state, self.weights
        rows = slice(0, n) if all_rows else slice(n - 1, n)
        xb = s.xb[rows]
        self.kernels.rmsnorm(s.x[rows], w.rms_final, xb)
        out = np.empty((n, self.config.vocab_size), np.float32) if all_rows else s.logits
        w.classifier.matmul(xb, out)
        return out
