"""Hostile llama2.c files: v0 and v2 checkpoints and tokenizer.bin files written by the
test in llama2.c's export layout, then mutated and truncated.

A checkpoint must load and run one forward step, or raise `ModelFormatError`; a
tokenizer must load and round-trip text, or raise `ModelFormatError`. No other
exception, no hang, no allocation out of proportion to the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ModelFormatError
from engine.numpy_runner.loader import load_model
from engine.tokenizer.loaders import load_llama2c_tokenizer
from tests.unit import reliability_fuzz as fuzz

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN weights are fine here

TOKENIZER_VOCAB = 300


@pytest.fixture(scope="module")
def checkpoints(workdir: Path) -> list[fuzz.Sample]:
    return [
        fuzz.Sample(f"v{version} {'shared' if shared else 'separate'} classifier",
               fuzz.write_llama2c(workdir / f"v{version}-{shared}.bin", version, shared=shared)
               .read_bytes())
        for version in (0, 2)
        for shared in (True, False)
    ]


@pytest.fixture(scope="module")
def tokenizer_bin(workdir: Path) -> fuzz.Sample:
    path = fuzz.write_llama2c_tokenizer(workdir / "tokenizer.bin", TOKENIZER_VOCAB)
    return fuzz.Sample("tokenizer.bin", path.read_bytes())


def _run_model(path: Path) -> None:
    model = load_model(path, context_length=8, batch=4)
    model.transformer.forward(1, 0)


# Mutations land in the header (most of the interesting fields) or anywhere.
REGIONS = st.sampled_from([28, 64, 300, None])


@fuzz.fuzz_settings(400)
@given(which=st.integers(0, 3), region=REGIONS, mutation=fuzz.mutations())
def test_mutated_llama2c_checkpoint_loads_or_is_rejected(
    workdir: Path, checkpoints: list[fuzz.Sample], which: int, region: int | None,
    mutation: fuzz.Mutation,
) -> None:
    data = fuzz.mutate(checkpoints[which].data, mutation, region=region)
    with fuzz.case_file(workdir, data, ".bin") as path:
        fuzz.check_load(lambda: _run_model(path), allowed=(ModelFormatError,),
                        file_bytes=len(data))


@fuzz.fuzz_settings(300)
@given(
    region=st.sampled_from([16, 128, None]),
    vocab_size=st.one_of(
        st.just(TOKENIZER_VOCAB),
        st.sampled_from([0, 1, 3, TOKENIZER_VOCAB - 1, TOKENIZER_VOCAB + 1, 2**31 - 1, -1]),
    ),
    mutation=fuzz.mutations(),
)
def test_mutated_llama2c_tokenizer_loads_or_is_rejected(
    workdir: Path, tokenizer_bin: fuzz.Sample, region: int | None, vocab_size: int,
    mutation: fuzz.Mutation,
) -> None:
    data = fuzz.mutate(tokenizer_bin.data, mutation, region=region)

    def load(path: Path) -> None:
        tokenizer = load_llama2c_tokenizer(path, vocab_size)
        tokenizer.decode(tokenizer.encode("hello world, the hello"))

    with fuzz.case_file(workdir, data, ".bin") as path:
        fuzz.check_load(lambda: load(path), allowed=(ModelFormatError,), file_bytes=len(data))


def test_unmutated_files_load(workdir: Path, checkpoints: list[fuzz.Sample],
                              tokenizer_bin: fuzz.Sample) -> None:
    """The baselines really load, so the mutated cases test more than rejection."""
    for sample in checkpoints:
        with fuzz.case_file(workdir, sample.data, ".bin") as path:
            assert fuzz.check_load(lambda p=path: _run_model(p), allowed=(),
                                   file_bytes=len(sample.data)) == "loaded"
    with fuzz.case_file(workdir, tokenizer_bin.data, ".bin") as path:
        tokenizer = load_llama2c_tokenizer(path, TOKENIZER_VOCAB)
        assert tokenizer.decode(tokenizer.encode("hello world")).strip() == "hello world"
