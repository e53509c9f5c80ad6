"""Weight tensors as they lie in a model file, and how to turn their rows into float32.

A `Tensor` is a zero-copy numpy view of a weight matrix inside a memory-mapped file:
float32 / float16 arrays, or ggml's quantized blocks (Q8_0, Q4_0, Q4_1) seen through a
structured dtype, or llama2.c's int8 groups with a separate float32 scale array.
`dequantize_rows` expands a range of rows into a caller's float32 buffer, which is how
every matrix product on quantized weights starts.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from enum import Enum

import numpy as np

from engine.errors import ModelFormatError

PAGE_SIZE = mmap.PAGESIZE
FAULT_AROUND_BYTES = 64 * 1024
"""Linux maps up to this much of the page cache around a faulting page (the default of
/sys/kernel/mm/.../fault_around_bytes)."""


class WeightType(Enum):
    """Storage types the runner reads without conversion."""

    F32 = "F32"
    F16 = "F16"
    Q8_0 = "Q8_0"
    Q4_0 = "Q4_0"
    Q4_1 = "Q4_1"
    I8_GROUPS = "I8_GROUPS"
    """llama2.c v2: int8 values, float32 scale per group of `group_size` values."""


# ggml block layouts: 32 weights per block, scale (and minimum) as float16
BLOCK_DTYPES: dict[WeightType, np.dtype] = {
    WeightType.Q8_0: np.dtype([("d", "<f2"), ("qs", "i1", (32,))]),
    WeightType.Q4_0: np.dtype([("d", "<f2"), ("qs", "u1", (16,))]),
    WeightType.Q4_1: np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", (16,))]),
}
QK = 32
"""Weights per ggml block."""


@dataclass
class MappedRegion:
    """A byte range of a memory-mapped file whose pages can be dropped from this process."""

    mm: mmap.mmap
    offset: int
    nbytes: int

    def release(self) -> None:
        """Drop the range's pages from this process (they stay in the OS page cache).

        The range is widened on both sides by Linux's fault-around window: a page fault
        maps the cached pages around it, behind as well as ahead, so reading one range
        maps pages of its neighbours too. Dropping a neighbour's pages costs at most a
        page fault if it is used again.
        """
        start = max(0, self.offset - FAULT_AROUND_BYTES)
        start -= start % PAGE_SIZE
        end = min(len(self.mm), self.offset + self.nbytes + FAULT_AROUND_BYTES)
        length = end - start
        if length > 0:
            self.mm.madvise(mmap.MADV_DONTNEED, start, length)


@dataclass
class Tensor:
    """A 1-D or 2-D weight as stored; 2-D tensors are (rows, cols) = (out, in) features."""

    name: str
    kind: WeightType
    shape: tuple[int, ...]
    data: np.ndarray
    """F32/F16: the values, shaped like `shape`; Q*: blocks, (rows, cols // 32);
    I8_GROUPS: int8 values, (rows, cols)."""
    scales: np.ndarray | None = None
    """I8_GROUPS only: float32 scales, (rows, cols // group_size)."""
    region: MappedRegion | None = None

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return self.shape[-1]

    @property
    def nbytes(self) -> int:
        extra = self.scales.nbytes if self.scales is not None else 0
        return int(self.data.nbytes) + extra


def storage_bytes(kind: WeightType, shape: tuple[int, ...], group_size: int = 0) -> int:
    """Bytes a tensor of `shape` takes in a file; raises ModelFormatError if it cannot exist."""
    count = 1
    for dim in shape:
        if dim <= 0:
            raise ModelFormatError(f"tensor dimension {dim} is not positive")
        count *= dim
    if kind is WeightType.F32:
        return count * 4
    if kind is WeightType.F16:
        return count * 2
    if kind is WeightType.I8_GROUPS:
        if group_size <= 0 or shape[-1] % group_size:
            raise ModelFormatError(
                f"row length {shape[-1]} is not a multiple of the group size {group_size}"
            )
        return count + count // group_size * 4
    if shape[-1] % QK:
        raise ModelFormatError(f"{kind.value} row length {shape[-1]} is not a multiple of {QK}")
    return count // QK * BLOCK_DTYPES[kind].itemsize


def tensor_from_buffer(
    name: str,
    kind: WeightType,
    shape: tuple[int, ...],
    mm: mmap.mmap,
    offset: int,
    group_size: int = 0,
) -> Tensor:
    """View `shape` values of `kind` at `offset` of `mm` without copying.

    The caller has already checked that the range lies inside the file.
    """
    nbytes = storage_bytes(kind, shape, group_size)
    count = int(np.prod(shape))
    region = MappedRegion(mm, offset, nbytes)
    if kind is WeightType.F32:
        data = np.frombuffer(mm, np.float32, count, offset).reshape(shape)
        return Tensor(name, kind, shape, data, region=region)
    if kind is WeightType.F16:
        data = np.frombuffer(mm, np.float16, count, offset).reshape(shape)
        return Tensor(name, kind, shape, data, region=region)
    if kind is WeightType.I8_GROUPS:
        values = np.frombuffer(mm, np.int8, count, offset).reshape(shape)
        scales = np.frombuffer(mm, np.float32, count // group_size, offset + count)
        scales = scales.reshape(*shape[:-1], shape[-1] // group_size)
        return Tensor(name, kind, shape, values, scales=scales, region=region)
    blocks = np.frombuffer(mm, BLOCK_DTYPES[kind], count // QK, offset)
    return Tensor(name, kind, shape, blocks.reshape(*shape[:-1], shape[-1] // QK), region=region)


@dataclass
class BlockRows:
    """Rows of a block-quantized tensor split into integer values and per-block scales:
    row r's weights are values[r, b] * scales[r, b] (+ mins[r, b]) for each block b."""

    values: np.ndarray
    """(rows, blocks, block_size) float32 holding the integer values."""
    scales: np.ndarray
    """(rows, blocks) float32."""
    mins: np.ndarray | None
    """(rows, blocks) float32 (Q4_1 only)."""


def block_rows(tensor: Tensor, start: int, stop: int, out: np.ndarray) -> BlockRows:
    """Unpack rows [start, stop) of a quantized 2-D `tensor` into `out` (a flat float32
    scratch buffer of at least (stop - start) * cols values), without applying scales."""
    n = stop - start
    dense = out[: n * tensor.cols]
    if tensor.kind is WeightType.I8_GROUPS:
        assert tensor.scales is not None
        scales = tensor.scales[start:stop]
        values = dense.reshape(n, scales.shape[1], -1)
        np.copyto(values, tensor.data[start:stop].reshape(values.shape))
        return BlockRows(values, scales, None)
    blocks = tensor.data[start:stop]
    values = dense.reshape(n, blocks.shape[1], QK)
    kind = tensor.kind
    if kind is WeightType.Q8_0:
        np.copyto(values, blocks["qs"])
    else:
        # 4-bit: byte j holds weight j in its low nibble and weight j + 16 in its high one
        qs = blocks["qs"]
        halves = values.reshape(n, blocks.shape[1], 2, QK // 2)
        np.bitwise_and(qs, 0x0F, out=halves[:, :, 0, :], casting="unsafe")
        np.right_shift(qs, 4, out=halves[:, :, 1, :], casting="unsafe")
        if kind is WeightType.Q4_0:
            values -= 8.0
    mins = blocks["m"].astype(np.float32) if kind is WeightType.Q4_1 else None
    return BlockRows(values, blocks["d"].astype(np.float32), mins)


def dequantize_rows(tensor: Tensor, start: int, stop: int, out: np.ndarray) -> np.ndarray:
    """Write rows [start, stop) of a 2-D `tensor` as float32 into `out`; return the view used.

    `out` is a flat float32 scratch buffer at least (stop - start) * cols long.
    """
    n = stop - start
    dense = out[: n * tensor.cols].reshape(n, tensor.cols)
    if tensor.kind is WeightType.F32 or tensor.kind is WeightType.F16:
        np.copyto(dense, tensor.data[start:stop])
        return dense
    rows = block_rows(tensor, start, stop, out)
    rows.values *= rows.scales[:, :, None]
    if rows.mins is not None:
        rows.values += rows.mins[:, :, None]
    return dense


def dequantize(tensor: Tensor) -> np.ndarray:
    """The whole tensor as a new float32 array of its shape."""
    if len(tensor.shape) == 1:
        return np.array(tensor.data, dtype=np.float32)
    out = np.empty(tensor.rows * tensor.cols, dtype=np.float32)
    return dequantize_rows(tensor, 0, tensor.rows, out)


@dataclass(frozen=True)
class ActivationRounding:
    """How the reference engine for a weight type rounds the input vector of a product.

    llama.cpp multiplies quantized weights with activations quantized to 8 bits per
    block of 32 (Q8_0 / Q8_1: scale = max|x| / 127 stored as float16) and F16 weights with
    float16 activations; llama2.c's runq.c quantizes activations in its own groups.
    Rounding the same way makes this runner agree with them to float summation order.
    """

    block: int = 0
    """Values per int8 group; 0 = no 8-bit rounding."""
    f16_scale: bool = True
    """Scales are stored as float16 (ggml) rather than float32 (llama2.c)."""
    to_f16: bool = False
    """Round the values themselves to float16 (F16 weights in ggml)."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The rounded copy of x (T, cols), or x itself when nothing is rounded."""
        if self.to_f16:
            return x.astype(np.float16).astype(np.float32)
        if not self.block:
            return x
        groups = x.reshape(x.shape[0], -1, self.block)
        amax = np.abs(groups).max(axis=-1, keepdims=True)
        scale = amax / np.float32(127.0)
        inverse = np.divide(np.float32(127.0), amax, out=np.zeros_like(amax), where=amax > 0)
        quantized = np.rint(groups * inverse)
        if self.f16_scale:
            scale = scale.astype(np.float16).astype(np.float32)
        return (quantized * scale).reshape(x.shape)


def activation_rounding(tensor: Tensor) -> ActivationRounding:
    """The rounding the reference engine applies to inputs of products with `tensor`."""
    if tensor.kind is WeightType.F16:
        return ActivationRounding(to_f16=True)
    if tensor.kind is WeightType.I8_GROUPS:
        assert tensor.scales is not None
        return ActivationRounding(block=tensor.cols // tensor.scales.shape[-1], f16_scale=False)
    if tensor.kind in BLOCK_DTYPES:
        return ActivationRounding(block=QK)
    return ActivationRounding()
