"""The sampler's filters against llama.cpp's own samplers on the same logits.

llama.cpp's chain (penalties, top-k, top-p, min-p, temperature) runs through the
llama_sampler C API on a token array; the tokens it keeps and their probabilities
must equal `Sampler.distribution`. No model is loaded: only the library.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from engine.base import GenerationOptions
from engine.sampling import Sampler

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is the reference")

VOCAB = 4096


def llama_cpp_distribution(
    row: np.ndarray, options: GenerationOptions, recent: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    n = row.shape[0]
    data = (llama_cpp.llama_token_data * n)()
    for i in range(n):
        data[i].id, data[i].logit, data[i].p = i, float(row[i]), 0.0
    array = llama_cpp.llama_token_data_array(data=data, size=n, selected=-1, sorted=False)
    samplers = [
        llama_cpp.llama_sampler_init_penalties(
            n, options.repeat_last_n, options.repeat_penalty, 0.0, 0.0
        ),
        llama_cpp.llama_sampler_init_top_k(options.top_k),
        llama_cpp.llama_sampler_init_top_p(options.top_p, 1),
        llama_cpp.llama_sampler_init_min_p(options.min_p, 1),
        llama_cpp.llama_sampler_init_temp(options.temperature),
    ]
    try:
        for token in recent:
            llama_cpp.llama_sampler_accept(samplers[0], token)
        for sampler in samplers:
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
    finally:
        for sampler in samplers:
            llama_cpp.llama_sampler_free(sampler)
    ids = np.array([data[i].id for i in range(array.size)])
    logits = np.array([data[i].logit for i in range(array.size)], dtype=np.float64)
    probs = np.exp(logits - logits.max())
    return ids, probs / probs.sum()


CASES = [
    {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "temperature": 0.7},
    {"top_k": 0, "top_p": 0.9, "min_p": 0.0, "temperature": 1.0},
    {"top_k": 0, "top_p": 1.0, "min_p": 0.1, "temperature": 1.3},
    {"top_k": 5, "top_p": 1.0, "min_p": 0.0, "temperature": 0.5},
    {"top_k": 100, "top_p": 0.5, "min_p": 0.02, "temperature": 0.9, "repeat_penalty": 1.3},
]


@pytest.mark.parametrize("case", CASES)
def test_distribution_equals_llama_cpp_sampler_chain(case: dict) -> None:
    options = GenerationOptions(**{"repeat_penalty": 1.0, "repeat_last_n": 64, **case})
    rng = np.random.default_rng(len(str(case)))
    for _ in range(5):
        row = rng.normal(0.0, 2.5, VOCAB).astype(np.float32)
        recent = rng.integers(0, VOCAB, 80).tolist()
        ours_ids, ours_p = Sampler(options, VOCAB).distribution(row, recent)
        ref_ids, ref_p = llama_cpp_distribution(row, options, recent)
        assert sorted(ours_ids.tolist()) == sorted(ref_ids.tolist())
        by_id = dict(zip(ref_ids.tolist(), ref_p.tolist(), strict=True))
        assert np.allclose(ours_p, [by_id[i] for i in ours_ids.tolist()], atol=1e-5)
