"""The numpy runner on tiny random models written in every supported format.

The same float32 weights, written as GGUF F32/F16/Q8_0/Q4_0/Q4_1 and as llama2.c v0/v2,
must give the logits of an independent naive float64 implementation — exactly (to
float32 and the float16 KV cache) for unquantized files, within quantization error for
the others — in every memory mode, batched or one token at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import EngineError
from engine.numpy_runner.loader import load_model
from engine.numpy_runner.replica import GgmlX86Kernels
from engine.numpy_runner.tensors import WeightType
from tests.unit.numpy_models import (
    TinyConfig,
    TinyWeights,
    random_weights,
    reference_logits,
    stored_weights_gguf,
    stored_weights_llama2c_v2,
    write_llama2c,
    write_tiny_gguf,
)

CONFIG = TinyConfig()
TOKENS = [1, 17, 260, 5, 99, 42, 42, 7, 280, 3, 150, 64]

# Largest |logit - reference| allowed, as a fraction of the reference logits' spread
# (standard deviation), against a float64 reference run on the weights exactly as the file
# stores them: what is left is float32 arithmetic, the float16 KV cache and, for
# quantized files, the 8-bit rounding of activations that llama.cpp / runq.c also do.
TOLERANCE = {
    "f32": 0.01, "f16": 0.02, "q8_0": 0.05, "q4_1": 0.1, "q4_0": 0.1,
    "llama2c_v0": 0.01, "llama2c_v2": 0.05,
}
# Root-mean-square distance from the float32 model's logits (fraction of the spread):
# the quantization error of each format on these random weights.
QUANTIZATION_ERROR = {"f16": 0.01, "q8_0": 0.05, "llama2c_v2": 0.05, "q4_1": 0.3, "q4_0": 0.3}


@pytest.fixture(scope="module")
def weights() -> TinyWeights:
    return random_weights(CONFIG, seed=1)


@pytest.fixture(scope="module")
def reference(weights: TinyWeights) -> np.ndarray:
    return reference_logits(CONFIG, weights, TOKENS)


def stored_reference(fmt: str, path: Path, weights: TinyWeights) -> np.ndarray:
    if fmt == "llama2c_v0":
        return reference_logits(CONFIG, weights, TOKENS)
    if fmt == "llama2c_v2":
        return reference_logits(CONFIG, stored_weights_llama2c_v2(weights), TOKENS)
    return reference_logits(CONFIG, stored_weights_gguf(path, CONFIG), TOKENS)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory, weights: TinyWeights) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    files = {
        name: write_tiny_gguf(root / f"tiny-{name}.gguf", CONFIG, weights, name)
        for name in ("f32", "f16", "q8_0", "q4_0", "q4_1")
    }
    files["llama2c_v0"] = write_llama2c(root / "tiny-v0.bin", CONFIG, weights, version=0)
    files["llama2c_v2"] = write_llama2c(root / "tiny-v2.bin", CONFIG, weights, version=2)
    return files


def _spread(reference: np.ndarray) -> float:
    return float(reference.std())


@pytest.mark.parametrize("fmt", list(TOLERANCE))
def test_every_format_matches_the_naive_reference(
    fmt: str, model_files: dict[str, Path], weights: TinyWeights
) -> None:
    reference = stored_reference(fmt, model_files[fmt], weights)
    model = load_model(model_files[fmt], mode="mmap", context_length=64)
    logits = model.transformer.forward_batch(TOKENS, 0, all_logits=True)
    error = np.abs(logits - reference).max() / _spread(reference)
    assert error < TOLERANCE[fmt], f"{fmt}: max error {error:.4f} of the logit spread"
    # and the greedy choice agrees wherever the reference is not nearly tied
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOLERANCE[fmt] * _spread(reference)
    assert (logits.argmax(1) == reference.argmax(1))[clear].all()


@pytest.mark.parametrize("fmt", list(QUANTIZATION_ERROR))
def test_quantization_error_is_that_of_the_format(
    fmt: str, model_files: dict[str, Path], reference: np.ndarray
) -> None:
    logits = load_model(model_files[fmt], mode="mmap").transformer.forward_batch(
        TOKENS, 0, all_logits=True
    )
    rms = float(np.sqrt(np.mean((logits - reference) ** 2))) / _spread(reference)
    assert rms < QUANTIZATION_ERROR[fmt], f"{fmt}: rms error {rms:.4f} of the logit spread"


def test_tensor_types_are_read_as_stored(model_files: dict[str, Path]) -> None:
    kinds = {
        "f16": WeightType.F16, "q8_0": WeightType.Q8_0, "q4_0": WeightType.Q4_0,
        "q4_1": WeightType.Q4_1,
    }
    for fmt, kind in kinds.items():
        model = load_model(model_files[fmt], mode="mmap", context_length=64)
        wq = model.transformer.weights.layers[0].wq
        assert wq.tensor.kind is kind  # type: ignore[attr-defined]


def test_llama2c_v0_and_gguf_f32_agree_exactly(model_files: dict[str, Path]) -> None:
    a = load_model(model_files["llama2c_v0"], mode="mmap").transformer
    b = load_model(model_files["f32"], mode="mmap").transformer
    assert a.config.vocab_size == b.config.vocab_size == CONFIG.vocab_size
    np.testing.assert_allclose(
        a.forward_batch(TOKENS, 0, all_logits=True),
        b.forward_batch(TOKENS, 0, all_logits=True),
        rtol=0, atol=1e-5,
    )


def test_separate_classifier_is_used(tmp_path: Path) -> None:
    weights = random_weights(CONFIG, seed=2, tied=False)
    reference = reference_logits(CONFIG, weights, TOKENS[:5])
    quantized = reference_logits(CONFIG, stored_weights_llama2c_v2(weights), TOKENS[:5])
    for path, expected in (
        (write_llama2c(tmp_path / "v0.bin", CONFIG, weights, version=0), reference),
        (write_llama2c(tmp_path / "v2.bin", CONFIG, weights, version=2), quantized),
        (write_tiny_gguf(tmp_path / "f32.gguf", CONFIG, weights, "f32"), reference),
    ):
        model = load_model(path, mode="mmap")
        assert model.transformer.weights.classifier is not model.transformer.weights.token_embedding
        logits = model.transformer.forward_batch(TOKENS[:5], 0, all_logits=True)
        assert np.abs(logits - expected).max() / _spread(expected) < 0.05, path.name


@pytest.mark.parametrize("fmt", ["q8_0", "q4_1", "llama2c_v2", "f16"])
def test_memory_modes_give_the_same_logits(fmt: str, model_files: dict[str, Path]) -> None:
    results = {}
    for mode in ("mmap", "cache", "stream", "auto"):
        model = load_model(model_files[fmt], mode=mode, context_length=64, budget_bytes=100_000)
        results[mode] = model.transformer.forward_batch(TOKENS, 0, all_logits=True)
    for mode in ("cache", "stream", "auto"):
        np.testing.assert_allclose(results[mode], results["mmap"], rtol=0, atol=1e-4)


def test_auto_mode_caches_what_the_budget_allows(model_files: dict[str, Path]) -> None:
    small = load_model(model_files["q8_0"], mode="auto", budget_bytes=200_000)
    large = load_model(model_files["q8_0"], mode="auto", budget_bytes=10**9)
    assert 0 < small.plan.cached_matrices < large.plan.cached_matrices
    assert large.plan.mapped_matrices == 0
    assert small.plan.cached_bytes <= 200_000


def test_one_token_at_a_time_equals_the_batch(model_files: dict[str, Path]) -> None:
    transformer = load_model(model_files["q8_0"], mode="mmap", batch=4).transformer
    batched = transformer.forward_batch(TOKENS, 0, all_logits=True)  # 3 chunks of 4
    stepwise = np.stack([transformer.forward(t, i).copy() for i, t in enumerate(TOKENS)])
    np.testing.assert_allclose(stepwise, batched, rtol=0, atol=0.05 * _spread(batched))
    assert (stepwise.argmax(1) == batched.argmax(1)).all()


def test_continuing_from_the_kv_cache(model_files: dict[str, Path], reference: np.ndarray) -> None:
    transformer = load_model(model_files["f32"], mode="cache").transformer
    transformer.forward_batch(TOKENS[:7], 0)
    rest = transformer.forward_batch(TOKENS[7:], 7, all_logits=True)
    assert np.abs(rest - reference[7:]).max() / _spread(reference) < TOLERANCE["f32"]


def test_context_overflow_and_bad_tokens_raise(model_files: dict[str, Path]) -> None:
    from engine.errors import ContextOverflowError

    transformer = load_model(model_files["f32"], mode="mmap", context_length=8).transformer
    assert transformer.context_length == 8
    with pytest.raises(ContextOverflowError):
        transformer.forward_batch(TOKENS, 0)
    with pytest.raises(ValueError):
        transformer.forward(CONFIG.vocab_size, 0)


@pytest.mark.parametrize("fmt", ["q8_0", "q4_1"])
def test_reference_mode_runs_the_same_layers_with_llama_cpp_kernels(
    fmt: str, model_files: dict[str, Path], weights: TinyWeights
) -> None:
    # the bit-for-bit check against llama.cpp is tests/integration/test_numpy_golden.py
    model = load_model(model_files[fmt], mode="reference", context_length=64)
    assert model.plan.kernels is GgmlX86Kernels
    assert isinstance(model.transformer.kernels, GgmlX86Kernels)
    batched = model.transformer.forward_batch(TOKENS, 0, all_logits=True)
    expected = stored_reference(fmt, model_files[fmt], weights)
    assert np.abs(batched - expected).max() / _spread(expected) < TOLERANCE[fmt]
    stepwise = np.stack([model.transformer.forward(t, i).copy() for i, t in enumerate(TOKENS)])
    assert (stepwise.argmax(1) == batched.argmax(1)).all()


def test_reference_mode_refuses_other_weight_types(
    model_files: dict[str, Path],
) -> None:
    with pytest.raises(EngineError, match="Q8_0 and Q4_1 matrices, not F16"):
        load_model(model_files["f16"], mode="reference")
