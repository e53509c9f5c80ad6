"""The llama transformer in numpy, in the shape of llama2.c's run.c.

`Config` holds the hyperparameters, `Weights` the arrays (each with its shape),
`RunState` the activation buffers and the KV cache (allocated once), and `Transformer`
runs `forward(token, pos) -> logits` for one token or `forward_batch(tokens, start_pos)`
for a prompt, where every layer processes all tokens as one matrix product.

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
    """Bytes the KV cache of `context_length` positions takes."""
    return 2 * 4 * config.n_layers * config.kv_dim * context_length


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


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float, out: np.ndarray) -> None:
    """out = x / sqrt(mean(x^2) + eps) * weight, row by row."""
    mean_square = np.einsum("ij,ij->i", x, x) / x.shape[1]
    np.multiply(x, (1.0 / np.sqrt(mean_square + eps)).astype(np.float32)[:, None], out=out)
    out *= weight


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, rope_dim: int) -> None:
    """Rotate consecutive pairs of the first `rope_dim` values of each head, in place.

    x is (T, heads, head_dim); cos and sin are (T, rope_dim // 2).
    """
    pairs = x[:, :, :rope_dim].reshape(x.shape[0], x.shape[1], rope_dim // 2, 2)
    even = pairs[..., 0].copy()
    odd = pairs[..., 1]
    c = cos[:, None, :]
    s = sin[:, None, :]
    pairs[..., 0] = even * c - odd * s
    pairs[..., 1] = even * s + odd * c


class Transformer:
    """A loaded model: config, planned weights and the run state."""

    def __init__(
        self,
        config: Config,
        weights: Weights[MatrixLike, np.ndarray],
        context_length: int,
        batch: int = 64,
    ) -> None:
        self.config = config
        self.weights = weights
        self.context_length = min(context_length, config.seq_len) or config.seq_len
        self.state = RunState(config, self.context_length, max(1, batch))
        factors = weights.rope_factors
        self._cos, self._sin = rope_tables(config, self.context_length, factors)
        self._rope_dim = config.rope_dim or config.head_dim
        self._scale = np.float32(1.0 / np.sqrt(config.head_dim))

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
        c, w, s = self.config, self.weights, self.state
        n = len(tokens)
        end = pos + n
        x, xb, xb2 = s.x[:n], s.xb[:n], s.xb2[:n]
        q, k, v = s.q[:n], s.k[:n], s.v[:n]
        att_out, hb, hb2 = s.att_out[:n], s.hb[:n], s.hb2[:n]
        cos, sin = self._cos[pos:end], self._sin[pos:end]
        group = c.n_heads // c.n_kv_heads

        # token embeddings
        w.token_embedding.gather_rows(tokens, x)
        if n > 1:
            # causal mask: position pos + t sees cache positions <= pos + t
            mask = np.triu(np.full((n, end), -np.inf, np.float32), k=pos + 1)

        for layer_index, layer in enumerate(w.layers):
            # attention rmsnorm
            rmsnorm(x, layer.rms_att, c.norm_eps, xb)
            # q, k, v projections
            layer.wq.matmul(xb, q)
            layer.wk.matmul(xb, k)
            layer.wv.matmul(xb, v)
            # RoPE on q and k
            q_heads = q.reshape(n, c.n_heads, c.head_dim)
            k_heads = k.reshape(n, c.n_kv_heads, c.head_dim)
            apply_rope(q_heads, cos, sin, self._rope_dim)
            apply_rope(k_heads, cos, sin, self._rope_dim)
            # write this chunk's keys and values into the (float16) cache
            key_cache = s.key_cache[layer_index]
            value_cache = s.value_cache[layer_index]
            key_cache[:, pos:end] = k_heads.transpose(1, 0, 2)
            value_cache[:, pos:end] = v.reshape(n, c.n_kv_heads, c.head_dim).transpose(1, 0, 2)
            # grouped-query attention: the `group` query heads sharing a kv head are
            # stacked so that each kv head is one matrix product
            if n == 1:
                queries = q_heads.reshape(c.n_kv_heads, group, c.head_dim)
            else:
                queries = (
                    q_heads.reshape(n, c.n_kv_heads, group, c.head_dim)
                    .transpose(1, 2, 0, 3)
                    .reshape(c.n_kv_heads, group * n, c.head_dim)
                )
            keys = key_cache[:, :end].astype(np.float32)  # (n_kv_heads, end, head_dim)
            # llama.cpp multiplies the float16 cache with float16-rounded queries
            queries = queries.astype(np.float16).astype(np.float32)
            scores = np.matmul(queries, keys.transpose(0, 2, 1))
            scores *= self._scale
            if n > 1:
                scores.reshape(c.n_kv_heads, group, n, end)[...] += mask
            # softmax over positions
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            # weighted sum of values (llama.cpp rounds the weights to float16 for the
            # product with its float16 values), heads back in order
            scores = scores.astype(np.float16).astype(np.float32)
            values = value_cache[:, :end].astype(np.float32)
            mixed = np.matmul(scores, values)  # (n_kv, group * n, head_dim)
            if n == 1:
                att_out[0] = mixed.reshape(-1)
            else:
                att_out.reshape(n, c.n_kv_heads, group, c.head_dim)[...] = mixed.reshape(
                    c.n_kv_heads, group, n, c.head_dim
                ).transpose(2, 0, 1, 3)
            # output projection and residual
            layer.wo.matmul(att_out, xb2)
            x += xb2
            # ffn rmsnorm
            rmsnorm(x, layer.rms_ffn, c.norm_eps, xb)
            # SwiGLU: w2(silu(w1 x) * w3 x)
            layer.w1.matmul(xb, hb)
            layer.w3.matmul(xb, hb2)
            hb2 *= hb
            np.negative(hb, out=hb)
            np.exp(hb, out=hb)
            hb += 1.0
            hb2 /= hb  # = gate * up / (1 + exp(-gate)) = silu(gate) * up
            layer.w2.matmul(hb2, xb2)
            x += xb2

    def _classify(self, n: int, all_rows: bool) -> np.ndarray:
        """Final rmsnorm and classifier for the last row (or all rows) of state.x."""
        s, w = self.state, self.weights
        rows = slice(0, n) if all_rows else slice(n - 1, n)
        xb = s.xb[rows]
        rmsnorm(s.x[rows], w.rms_final, self.config.norm_eps, xb)
        out = np.empty((n, self.config.vocab_size), np.float32) if all_rows else s.logits
        w.classifier.matmul(xb, out)
        return out
