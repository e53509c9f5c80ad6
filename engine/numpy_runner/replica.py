"""llama.cpp's x86 CPU arithmetic, reproduced in numpy: the runner's reference mode.

The runner's fast path (engine.numpy_runner.model) computes the same transformer as
llama.cpp but sums its products in BLAS's order. With this model's activations (a few
residual dimensions reach 25,000, so one float32 ulp there is 0.002) a last-bit
difference now and then flips the 8-bit rounding of an activation, and 30 layers later
the logits differ by about 0.2. So "does the runner compute the same function?" cannot
be answered by comparing fast-path logits with llama.cpp's to a tight tolerance.

The reference mode answers it: the runner's one forward pass (`Transformer._layers`,
same readers, same weights) with `GgmlX86Kernels` and `QuantizedMatrix` weights, which
do each operation in the exact order of rounding of ggml's CPU kernels in an x86 build
(AVX2 or AVX-512, as llama-cpp-python builds on this machine), so its logits equal
llama.cpp's bit for bit:

- products with Q8_0 / Q4_1 weights (`QuantizedMatrix`): activations rounded to 8 bits
  per block of 32 (Q8_0 / Q8_1), exact integer dot products in 8 lanes of 4, a fused
  multiply-add per block into each lane, lanes summed pairwise (tinyBLAS for prompts,
  ggml_vec_dot for single tokens: the same order);
- products with Q4_0 weights: llama.cpp repacks a Q4_0 matrix whose row count is a
  multiple of 8 when it loads it on any AVX2 CPU (ggml-cpu's "CPU_REPACK" extra buffer
  type, block_q4_0x8; every matrix of usual models), and multiplies it with
  ggml_gemm/gemv_q4_0_8x8_q8_0: activations rounded to Q8_0 as above, each block's
  integer dot product exact, then one fused multiply-add per block,
  acc += dot * (weight scale * activation scale), into one float32 per output. Other
  Q4_0 matrices, and all of them when llama.cpp loads with `use_extra_bufts` off, take
  the lane order of Q8_0 (ggml_vec_dot_q4_0_q8_0); `QuantizedMatrix.repacked` says which;
- attention with the float16 KV cache: float16 queries and weights, 16-lane fused
  multiply-adds summed by a halving tree — tinyBLAS order for prompts, ggml_vec_dot_f16's
  four accumulators for single tokens (`f16_dot_gemm` / `f16_dot_vec`);
- softmax and SiLU through ggml's polynomial expf (`ggml_expf`); RMSNorm summing squares
  in double; RoPE angles from libm's powf/cosf/sinf, advanced by float32 products.

Fused multiply-adds are done in float64 (the product of two float32 values is exact
there) and rounded once to float32; this differs from a true fused operation only when
the float64 sum lands exactly on a float32 rounding tie (about one case in 2^29).

It is slow (about 10x the fast path): `[engine] memory_mode = "reference"` (or
`--memory-mode reference`) selects it to check Hearth against llama.cpp. ARM builds of
llama.cpp (a Raspberry Pi) sum in another order, so this reproduces x86 llama.cpp only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.numpy_runner.model import Config, Kernels, MatrixLike, causal_mask
from engine.numpy_runner.tensors import QK, Tensor, WeightType, block_rows

LANES = 8
"""Lanes of ggml's 256-bit integer dot products: lane j sums elements 4j..4j+3 of a block."""
F16_LANES = 16
"""Lanes of the 512-bit float16 products (AVX-512 builds)."""
F16_ACCUMULATORS = 4
"""ggml_vec_dot_f16 keeps four 16-lane accumulators: a step covers 64 elements."""
REPACK_ROWS = 8
"""llama.cpp repacks a Q4_0 matrix when its row count is a multiple of this (block_q4_0x8:
8 rows' blocks interleaved), as ggml_repack_get_optimal_repack_type does on AVX2 CPUs."""
SOFTMAX_CHUNK = 16


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32(a * b + c) with one rounding (via float64, see the module docstring)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + c).astype(np.float32)


def halving_sum(x: np.ndarray) -> np.ndarray:
    """Sum the last axis (8 or 16 lanes) as x86 horizontal adds do: the upper half is
    added to the lower half until one lane is left (hsum_float_8, _mm512_reduce_add_ps)."""
    x = x.astype(np.float32)
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        x = x[..., :half] + x[..., half:]
    return x[..., 0]


def _hex(literal: str) -> np.float32:
    """A float32 constant written as C writes it (hexadecimal float)."""
    return np.float32(float.fromhex(literal))


def ggml_expf(x: np.ndarray) -> np.ndarray:
    """ggml_v_expf (AVX-512 and AVX2 share it): exp through a degree-5 polynomial and a
    power of two, max error 1.5 ulp. -inf gives 0 like the kernel."""
    with np.errstate(invalid="ignore", over="ignore"):  # -inf (masked scores) is expected
        return _expf(np.asarray(x, np.float32))


def _expf(x: np.ndarray) -> np.ndarray:
    f32 = np.float32
    r = _hex("0x1.8p23")
    z = fma32(x, _hex("0x1.715476p+0"), r)
    n = z - r
    b = fma32(-n, _hex("0x1.62e4p-1"), x)
    b = fma32(-n, _hex("0x1.7f7d1cp-20"), b)
    u = b * b
    j = fma32(
        fma32(fma32(_hex("0x1.0e4020p-7"), b, _hex("0x1.573e2ep-5")), u,
              fma32(_hex("0x1.555e66p-3"), b, _hex("0x1.fffdb6p-2"))),
        u,
        fma32(_hex("0x1.ffffecp-1"), b, f32(1.0)),
    )
    result = np.ldexp(j, np.nan_to_num(n, nan=0.0, posinf=0.0, neginf=0.0).astype(np.int32))
    out_of_range = ~(np.abs(n) <= 192)
    if out_of_range.any():
        result = np.where(out_of_range, np.where(n <= 0, f32(0.0), f32(np.inf)), result)
    return result.astype(np.float32)


def to_f16(x: np.ndarray) -> np.ndarray:
    """Round to float16 and back (round to nearest even, like F16C)."""
    return x.astype(np.float16).astype(np.float32)


# -- 8-bit activations --------------------------------------------------------------


@dataclass
class Q8Activations:
    """A (T, cols) float32 activation quantized per block of 32 like quantize_row_q8_0/1."""

    values: np.ndarray
    """(T, blocks, 32) float32 holding the int8 values."""
    scales: np.ndarray
    """(T, blocks) float32: the float16 scale."""
    sums: np.ndarray
    """(T, blocks) float32: Q8_1's float16 `s` = scale * sum(values) (scale unrounded)."""


def quantize_q8(x: np.ndarray) -> Q8Activations:
    blocks = x.reshape(x.shape[0], -1, QK).astype(np.float32)
    amax = np.abs(blocks).max(axis=-1)
    scale = amax / np.float32(127.0)
    inverse = np.divide(np.float32(127.0), amax, out=np.zeros_like(amax), where=amax != 0)
    values = np.rint(blocks * inverse[..., None])
    sums = to_f16(scale * values.sum(axis=-1, dtype=np.float32))
    return Q8Activations(values, to_f16(scale), sums)


# -- products with quantized weights -------------------------------------------------


class QuantizedMatrix(MatrixLike):
    """A Q4_0, Q8_0 or Q4_1 matrix multiplied the way ggml's x86 kernels do.

    Its integer values are unpacked once, as float32 (4 bytes a weight, like "cache").
    """

    def __init__(self, tensor: Tensor, max_temp_floats: int = 1 << 24) -> None:
        if tensor.kind not in (WeightType.Q8_0, WeightType.Q4_0, WeightType.Q4_1):
            raise EngineError(
                f"the reference mode handles Q4_0, Q8_0 and Q4_1 matrices, not "
                f"{tensor.kind.value} ({tensor.name})"
            )
        self.tensor = tensor
        self.rows, self.cols = tensor.rows, tensor.cols
        self.blocks = self.cols // QK
        self.repacked = tensor.kind is WeightType.Q4_0 and self.rows % REPACK_ROWS == 0
        """Multiplied as llama.cpp's repacked Q4_0x8 (see the module docstring)."""
        scratch = np.empty(self.rows * self.cols, np.float32)
        unpacked = block_rows(tensor, 0, self.rows, scratch)
        # (blocks * LANES, rows, 4): one small matrix product per lane of each block
        self.lane_values = np.ascontiguousarray(
            unpacked.values.reshape(self.rows, self.blocks * LANES, 4).transpose(1, 0, 2)
        )
        self.scales = unpacked.scales  # (rows, blocks)
        self.mins = unpacked.mins
        self.max_temp_floats = max_temp_floats

    def gather_rows(self, ids: Sequence[int], out: np.ndarray) -> None:
        """Embedding rows, dequantized (values times scale, exact in float32)."""
        for i, token in enumerate(ids):
            values = self.lane_values[:, token, :].reshape(self.blocks, QK)
            row = values * self.scales[token][:, None]
            if self.mins is not None:
                row = row + self.mins[token][:, None]
            out[i] = row.reshape(-1)

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:
        act = quantize_q8(x)
        tokens = x.shape[0]
        step = max(1, self.max_temp_floats // (self.blocks * LANES * tokens))
        a_lanes = act.values.reshape(tokens, self.blocks * LANES, 4).transpose(1, 2, 0)
        for start in range(0, self.rows, step):
            stop = min(start + step, self.rows)
            out[:, start:stop] = self._rows(act, a_lanes, start, stop)

    def _rows(self, act: Q8Activations, a_lanes: np.ndarray, start: int, stop: int) -> np.ndarray:
        tokens = act.values.shape[0]
        # exact integer lane sums: (blocks * LANES, n, T)
        lanes = np.matmul(self.lane_values[:, start:stop], a_lanes)
        lanes = lanes.reshape(self.blocks, LANES, stop - start, tokens)
        # combined scale per (block, row, token), a float32 product
        combined = self.scales[start:stop].T[:, :, None] * act.scales.T[:, None, :]
        if self.repacked:
            # ggml_gemm/gemv_q4_0_8x8_q8_0: the block's whole integer dot product (exact
            # in float32), one fused multiply-add per block into one sum per output
            dots = lanes.sum(axis=1)
            acc = np.zeros((stop - start, tokens), np.float32)
            for b in range(self.blocks):
                acc = fma32(dots[b], combined[b], acc)
            return acc.T
        # each block's scaled lane sums are exact in float64; adding them one block at
        # a time with a rounding to float32 after each is the kernels' fused multiply-add
        scaled = combined.astype(np.float64)[:, None] * lanes
        acc = np.zeros((LANES, stop - start, tokens), np.float32)
        wide = np.empty(acc.shape, np.float64)
        for b in range(self.blocks):
            np.add(acc, scaled[b], out=wide)
            acc[...] = wide
        result = halving_sum(acc.transpose(1, 2, 0))  # (n, T)
        if self.mins is not None:
            # Q4_1: + sum over blocks of min * s, a float32 running sum (the compiler
            # fuses this multiply-add too)
            mins = self.mins[start:stop]  # (n, blocks)
            summs = np.zeros((stop - start, tokens), np.float32)
            for b in range(self.blocks):
                summs = fma32(mins[:, b][:, None], act.sums[:, b][None, :], summs)
            result = result + summs
        return result.T


# -- attention over the float16 cache ------------------------------------------------


def pad_last(x: np.ndarray, multiple: int) -> np.ndarray:
    """x with zeros appended to its last axis up to a multiple of `multiple` (the
    kernels' unused cache cells, which add exact zeros)."""
    pad = -x.shape[-1] % multiple
    if not pad:
        return x
    return np.concatenate([x, np.zeros((*x.shape[:-1], pad), np.float32)], axis=-1)


def f16_dot_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products along the last axis of float16-valued a (..., k) and b (..., k), as
    tinyBLAS does for prompts: 16 lanes, one fused multiply-add per 16 elements in
    order, lanes summed by a halving tree."""
    a, b = pad_last(a, F16_LANES), pad_last(b, F16_LANES)
    chunks = a.shape[-1] // F16_LANES
    a = a.reshape(*a.shape[:-1], chunks, F16_LANES)
    b = b.reshape(*b.shape[:-1], chunks, F16_LANES)
    acc = np.zeros((*np.broadcast_shapes(a.shape, b.shape)[:-2], F16_LANES), np.float32)
    for c in range(chunks):
        acc = fma32(a[..., c, :], b[..., c, :], acc)
    return halving_sum(acc)


def f16_dot_vec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The same dot products as ggml_vec_dot_f16 sums them for one token: four 16-lane
    accumulators over steps of 64 elements, then acc0+acc2, acc1+acc3, their sum, and
    a halving tree over the lanes."""
    step = F16_LANES * F16_ACCUMULATORS
    a, b = pad_last(a, step), pad_last(b, step)
    steps = a.shape[-1] // step
    a = a.reshape(*a.shape[:-1], steps, F16_ACCUMULATORS, F16_LANES)
    b = b.reshape(*b.shape[:-1], steps, F16_ACCUMULATORS, F16_LANES)
    shape = (*np.broadcast_shapes(a.shape, b.shape)[:-3], F16_ACCUMULATORS, F16_LANES)
    acc = np.zeros(shape, np.float32)
    for s in range(steps):
        acc = fma32(a[..., s, :, :], b[..., s, :, :], acc)
    first = acc[..., 0, :] + acc[..., 2, :]
    second = acc[..., 1, :] + acc[..., 3, :]
    return halving_sum(first + second)


def ggml_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax of the last axis (already scaled and masked with -inf) like
    ggml_compute_forward_soft_max_f32: expf of chunks of 16 summed by a halving tree
    into a double, then multiplied by float32(1 / sum)."""
    peak = scores.max(axis=-1, keepdims=True)
    values = ggml_expf(scores - peak)
    padded = pad_last(values, SOFTMAX_CHUNK)
    chunks = padded.shape[-1] // SOFTMAX_CHUNK
    chunk_sums = halving_sum(padded.reshape(*padded.shape[:-1], chunks, SOFTMAX_CHUNK))
    total = np.zeros(scores.shape[:-1], np.float64)
    for c in range(chunks):
        total = total + chunk_sums[..., c].astype(np.float64)
    inverse = (1.0 / total).astype(np.float32)
    return values * inverse[..., None]


# -- the rest ------------------------------------------------------------------------


def ggml_rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Squares (rounded to float32) summed in double; mean and 1/sqrt in float32."""
    squares = (x * x).astype(np.float64)
    total = np.cumsum(squares, axis=1)[:, -1]  # ggml's order: one running double sum
    mean = (total / x.shape[1]).astype(np.float32)
    scale = np.float32(1.0) / np.sqrt(mean + np.float32(eps))
    return (x * scale[:, None]) * weight


def _libm() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("powf", "cosf", "sinf"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float] * (2 if name == "powf" else 1)
    return lib


def ggml_rope_tables(config: Config, positions: int) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin (positions, rope_dim // 2) exactly as ggml_rope_cache_init computes them:
    theta starts at the position and is multiplied by powf(base, -2/dims) per pair."""
    if config.rope_freq_scale != 1.0:
        raise EngineError("the reference mode does not do scaled RoPE")
    libm = _libm()
    rope_dim = config.rope_dim or config.head_dim
    theta_scale = np.float32(libm.powf(config.rope_theta, np.float32(-2.0) / np.float32(rope_dim)))
    cos = np.empty((positions, rope_dim // 2), np.float32)
    sin = np.empty_like(cos)
    for p in range(positions):
        theta = np.float32(p)
        for i in range(rope_dim // 2):
            cos[p, i] = libm.cosf(theta)
            sin[p, i] = libm.sinf(theta)
            theta = np.float32(theta * theta_scale)
    return cos, sin


def ggml_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate consecutive pairs; x (T, heads, head_dim), cos/sin (T, pairs)."""
    pairs = x.reshape(x.shape[0], x.shape[1], -1, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    # x0*cos - x1*sin with the compiler's fused multiply-add on the first product
    first = fma32(x0, c, -(x1 * s))
    second = fma32(x0, s, x1 * c)
    return np.stack([first, second], axis=-1).reshape(x.shape)


class GgmlX86Kernels(Kernels):
    """`Transformer`'s layer operations rounded as llama.cpp's x86 CPU kernels round them.

    With `QuantizedMatrix` for every weight (the planner's "reference" mode), a
    `Transformer` reproduces llama.cpp's logits bit for bit: several tokens at once as
    its prompt processing (one `llama_decode` of the whole batch), one token as a decode
    step.
    """

    def __init__(self, config: Config, context_length: int,
                 rope_factors: np.ndarray | None) -> None:
        super().__init__(config, context_length, rope_factors)
        if rope_factors is not None:
            raise EngineError("the reference mode does not do RoPE frequency factors")
        self.cos, self.sin = ggml_rope_tables(config, context_length)
        self.rope_dim = config.rope_dim or config.head_dim
        self.scale = np.float32(1.0) / np.sqrt(np.float32(config.head_dim))

    def rmsnorm(self, x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
        out[...] = ggml_rmsnorm(x, weight, self.config.norm_eps)

    def rope(self, x: np.ndarray, pos: int) -> None:
        n, rope_dim = x.shape[0], self.rope_dim
        x[:, :, :rope_dim] = ggml_rope(
            x[:, :, :rope_dim], self.cos[pos : pos + n], self.sin[pos : pos + n]
        )

    def attend(self, q: np.ndarray, keys: np.ndarray, values: np.ndarray, pos: int,
               out: np.ndarray) -> None:
        c = self.config
        n = q.shape[0]
        # query head h uses kv head h // group
        kv_of_head = np.arange(c.n_heads) // (c.n_heads // c.n_kv_heads)
        dot = f16_dot_gemm if n > 1 else f16_dot_vec
        k_heads = keys.astype(np.float32)[kv_of_head]  # (heads, end, head_dim)
        q16 = to_f16(q).transpose(1, 0, 2)  # (heads, n, head_dim)
        scores = dot(q16[:, :, None, :], k_heads[:, None, :, :])  # (heads, n, end)
        scores = scores * self.scale + causal_mask(n, pos)[None]
        weights = to_f16(ggml_softmax(scores))
        v_heads = values.astype(np.float32).transpose(0, 2, 1)[kv_of_head]  # (heads, hd, end)
        mixed = dot(weights[:, :, None, :], v_heads[:, None, :, :])  # (heads, n, head_dim)
        out[...] = mixed.transpose(1, 0, 2).reshape(n, c.q_dim)

    def swiglu(self, gate: np.ndarray, up: np.ndarray, out: np.ndarray) -> None:
        silu = gate / (np.float32(1.0) + ggml_expf(np.float32(0.0) - gate))
        out[...] = silu * up
