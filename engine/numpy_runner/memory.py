"""The memory planner: decides, matrix by matrix, where weights live while the model runs.

Modes:
- ``cache``: every matrix is dequantized to float32 at load (fastest; about 4 bytes per
  weight of RAM); the mapped file pages are dropped afterwards.
- ``mmap``: matrices stay quantized in the mapped file; before each product a tile of
  rows is dequantized into one small reused float32 scratch buffer and multiplied with
  BLAS. The OS keeps the file pages resident (they count once, as page cache).
- ``auto``: cache as many layers (and the classifier first, which runs every token) as
  the RAM budget allows; the rest as ``mmap``.
- ``stream``: like ``mmap``, but after each product the matrix's pages are released with
  ``madvise(MADV_DONTNEED)``, so only the layer being computed is resident and a model
  larger than RAM still runs (at the speed of the disk).
- ``reference``: llama.cpp's arithmetic, to the last bit (x86 builds): every matrix is a
  `replica.QuantizedMatrix` (Q8_0 / Q4_0 / Q4_1 only, unpacked to float32 like
  ``cache``) and the layers use `replica.GgmlX86Kernels`. About ten times slower than
  ``cache``; for checking Hearth against llama.cpp.

The plan names the kernels too: `NumpyKernels` for every mode but ``reference``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import EngineError
from engine.numpy_runner.model import (
    Config,
    Kernels,
    LayerWeights,
    MatrixLike,
    NumpyKernels,
    Weights,
)
from engine.numpy_runner.replica import GgmlX86Kernels, QuantizedMatrix
from engine.numpy_runner.tensors import (
    ActivationRounding,
    MappedRegion,
    Tensor,
    WeightType,
    activation_rounding,
    block_rows,
    dequantize,
    dequantize_rows,
)

log = logging.getLogger(__name__)

MODES = ("mmap", "cache", "auto", "stream", "reference")
SCRATCH_FLOATS = 128 * 1024
"""Float32 scratch size for tile dequantization: 512 KiB, within a typical L2 cache."""
AUTO_RAM_FRACTION = 0.5
"""Share of available RAM that "auto" spends on float32 weights when no budget is set."""


class DenseMatrix(MatrixLike):
    """A float32 matrix in RAM (or an F32 tensor viewed in the mapped file).

    `rounding` is that of the tensor it was dequantized from, so that a cached matrix
    gives the same products as the file's.
    """

    def __init__(self, values: np.ndarray, rounding: ActivationRounding | None = None) -> None:
        self.values = values  # (rows, cols) float32
        self.rows, self.cols = values.shape
        self.rounding = rounding or ActivationRounding()

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:
        x = self.rounding.apply(x)
        if x.shape[0] == 1:
            np.dot(self.values, x[0], out=out[0])
        else:
            np.matmul(x, self.values.T, out=out)

    def gather_rows(self, ids: Sequence[int], out: np.ndarray) -> None:
        np.take(self.values, ids, axis=0, out=out)


class TiledMatrix(MatrixLike):
    """A matrix left as stored in the file, multiplied a tile of rows at a time.

    Each tile is dequantized into the shared scratch buffer and multiplied with BLAS, so
    the float32 copy of the weights never exists as a whole.
    """

    def __init__(self, tensor: Tensor, scratch: np.ndarray, release: bool) -> None:
        self.tensor = tensor
        self.rows, self.cols = tensor.rows, tensor.cols
        self.scratch = scratch
        self.release = release
        self.tile_rows = max(1, scratch.size // self.cols)
        self.rounding = activation_rounding(tensor)
        self.blocked = tensor.kind not in (WeightType.F32, WeightType.F16)
        self.block = tensor.cols // self.tensor.data.shape[-1] if self.blocked else 0
        if tensor.kind is WeightType.I8_GROUPS:
            assert tensor.scales is not None
            self.block = tensor.cols // tensor.scales.shape[-1]

    def matmul(self, x: np.ndarray, out: np.ndarray) -> None:
        x = self.rounding.apply(x)
        single = x.shape[0] == 1
        if single and self.blocked:
            self._matvec_by_blocks(x[0], out[0])
            return
        for start in range(0, self.rows, self.tile_rows):
            stop = min(start + self.tile_rows, self.rows)
            tile = dequantize_rows(self.tensor, start, stop, self.scratch)
            if single:
                np.dot(tile, x[0], out=out[0, start:stop])
            else:
                out[:, start:stop] = x @ tile.T
            if self.release:
                # tile by tile, so that not even one whole matrix (the classifier is
                # the largest) is resident at once
                self._release_rows(start, stop)
        if self.release and self.tensor.region is not None:
            # and the whole matrix once more: page faults map neighbouring pages too
            self.tensor.region.release()

    def _matvec_by_blocks(self, x: np.ndarray, out: np.ndarray) -> None:
        """out = W @ x for one token, with scales applied per block product instead of
        per weight: y[r] = sum_b scale[r, b] * (q[r, b] . x[b]) (+ min[r, b] * sum(x[b])).
        One pass fewer over the unpacked tile than dequantizing it first."""
        blocks = self.cols // self.block
        x_blocks = x.reshape(blocks, self.block, 1)
        block_sums = x.reshape(blocks, self.block).sum(axis=1)
        for start in range(0, self.rows, self.tile_rows):
            stop = min(start + self.tile_rows, self.rows)
            rows = block_rows(self.tensor, start, stop, self.scratch)
            dots = np.matmul(rows.values.transpose(1, 0, 2), x_blocks)  # (blocks, n, 1)
            np.einsum("bn,nb->n", dots[:, :, 0], rows.scales, out=out[start:stop])
            if rows.mins is not None:
                out[start:stop] += rows.mins @ block_sums
            if self.release:
                self._release_rows(start, stop)
        if self.release and self.tensor.region is not None:
            self.tensor.region.release()

    def gather_rows(self, ids: Sequence[int], out: np.ndarray) -> None:
        for i, token in enumerate(ids):
            dequantize_rows(self.tensor, token, token + 1, out[i])
            if self.release:
                self._release_rows(token, token + 1)

    def _release_rows(self, start: int, stop: int) -> None:
        region = self.tensor.region
        if region is None:
            return
        rows = stop - start
        scales = self.tensor.scales
        if scales is None:
            row_bytes = region.nbytes // self.rows
            MappedRegion(region.mm, region.offset + start * row_bytes, rows * row_bytes).release()
            return
        # llama2.c int8 groups: the int8 values, then the float32 scales
        values_bytes = self.rows * self.cols
        scale_row_bytes = scales.shape[1] * 4
        MappedRegion(region.mm, region.offset + start * self.cols, rows * self.cols).release()
        MappedRegion(region.mm, region.offset + values_bytes + start * scale_row_bytes,
                     rows * scale_row_bytes).release()


@dataclass(frozen=True)
class MemoryPlan:
    """What the planner decided, for logs and `EngineInfo`."""

    mode: str
    cached_matrices: int
    mapped_matrices: int
    cached_bytes: int
    """Float32 bytes held in RAM for cached matrices."""
    kernels: type[Kernels] = NumpyKernels
    """What the layers compute with besides the matrices."""


def matrix_bytes_f32(tensor: Tensor) -> int:
    return 4 * tensor.rows * tensor.cols


def default_budget(kv_bytes: int) -> int:
    """RAM "auto" may spend on float32 weights: a share of what is free, minus the KV cache."""
    import psutil  # only "auto" needs it; stream mode keeps its footprint small

    available = psutil.virtual_memory().available
    return max(0, int(available * AUTO_RAM_FRACTION) - kv_bytes)


def plan(
    config: Config,
    tensors: Weights[Tensor, Tensor],
    mode: str,
    budget_bytes: int = 0,
    kv_bytes: int = 0,
) -> tuple[Weights[MatrixLike, np.ndarray], MemoryPlan]:
    """Turn the file's tensors into matrices the forward pass multiplies with."""
    if mode not in MODES:
        raise EngineError(f"unknown memory mode {mode!r}; choose one of {', '.join(MODES)}")
    scratch = np.zeros(SCRATCH_FLOATS, np.float32)
    release = mode == "stream"
    reference = mode == "reference"

    # which matrices get a float32 copy: all (cache), none (mmap/stream), or as many as
    # the budget allows (auto) — classifier first since it runs once per token like every
    # layer but is the largest single matrix, then layers in order
    order: list[Tensor] = [tensors.classifier]
    if tensors.token_embedding is not tensors.classifier:
        order.append(tensors.token_embedding)
    for layer in tensors.layers:
        order += [layer.wq, layer.wk, layer.wv, layer.wo, layer.w1, layer.w2, layer.w3]
    cached_ids: set[int] = set()
    if mode in ("cache", "reference"):
        cached_ids = {id(t) for t in order}
    elif mode == "auto":
        budget = budget_bytes or default_budget(kv_bytes)
        spent = 0
        for tensor in order:
            cost = matrix_bytes_f32(tensor)
            if spent + cost > budget:
                break
            spent += cost
            cached_ids.add(id(tensor))

    made: dict[int, MatrixLike] = {}
    cached_bytes = 0

    def matrix(tensor: Tensor) -> MatrixLike:
        nonlocal cached_bytes
        if id(tensor) in made:
            return made[id(tensor)]
        result: MatrixLike
        if id(tensor) in cached_ids:
            if reference:
                result = QuantizedMatrix(tensor)
            else:
                result = DenseMatrix(dequantize(tensor), activation_rounding(tensor))
            cached_bytes += matrix_bytes_f32(tensor)
            if tensor.region is not None:
                tensor.region.release()
        elif tensor.kind is WeightType.F32 and not release:
            result = DenseMatrix(tensor.data)
        else:
            result = TiledMatrix(tensor, scratch, release)
        made[id(tensor)] = result
        return result

    def vector(tensor: Tensor) -> np.ndarray:
        return dequantize(tensor)

    layers = [
        LayerWeights(
            rms_att=vector(layer.rms_att),
            wq=matrix(layer.wq),
            wk=matrix(layer.wk),
            wv=matrix(layer.wv),
            wo=matrix(layer.wo),
            rms_ffn=vector(layer.rms_ffn),
            w1=matrix(layer.w1),
            w2=matrix(layer.w2),
            w3=matrix(layer.w3),
        )
        for layer in tensors.layers
    ]
    weights = Weights(
        token_embedding=matrix(tensors.token_embedding),
        layers=layers,
        rms_final=vector(tensors.rms_final),
        classifier=matrix(tensors.classifier),
        rope_factors=vector(tensors.rope_factors) if tensors.rope_factors is not None else None,
    )
    if release:
        # the norm vectors were copied; drop whatever reading them brought in
        vectors = [tensors.rms_final, *(v for lay in tensors.layers
                                         for v in (lay.rms_att, lay.rms_ffn))]
        if tensors.rope_factors is not None:
            vectors.append(tensors.rope_factors)
        for tensor in vectors:
            if tensor.region is not None:
                tensor.region.release()
    cached = len(cached_ids)
    result = MemoryPlan(mode, cached, len(order) - cached, cached_bytes,
                        GgmlX86Kernels if reference else NumpyKernels)
    log.info(
        "memory plan %s: %d matrices cached (%.0f MB float32), %d left in the file",
        mode, cached, cached_bytes / 1e6, len(order) - cached,
    )
    return weights, result
