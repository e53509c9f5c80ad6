"""Hostile llama2.c files: v0 and v2 checkpoints and tokenizer.bin files written by the
test in llama2.c's export layout, then mutated and truncated.

A checkpoint must load and run one forward step, or raise `ModelFormatError`; a
tokenizer must load and round-trip text, or raise `ModelFormatError`. No other
exception, no hang, no allocation out of proportion to the file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ModelFormatError
from engine.numpy_runner.loader import load_model
from engine.tokenizer.loaders import load_llama2c_tokenizer
from tests.unit.reliability_fuzz import (
    Mutation,
    Sample,
    check_load,
    fuzz_settings,
    mutate,
    mutations,
    write_llama2c,
    write_llama2c_tokenizer,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN weights are fine here

TOKENIZER_VOCAB = 300


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hearth-fuzz-llama2c-") as name:
        yield Path(name)


@pytest.fixture(scope="module")
def checkpoints(workdir: Path) -> list[Sample]:
    return [
        Sample(f"v{version} {'shared' if shared else 'separate'} classifier",
               write_llama2c(workdir / f"v{version}-{shared}.bin", version, shared=shared)
               .read_bytes())
        for version in (0, 2)
        for shared in (True, False)
    ]


@pytest.fixture(scope="module")
def tokenizer_bin(workdir: Path) -> Sample:
    path = write_llama2c_tokenizer(workdir / "tokenizer.bin", TOKENIZER_VOCAB)
    return Sample("tokenizer.bin", path.read_bytes())


def _write_case(directory: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".bin", dir=directory)
    with open(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def _run_model(path: Path) -> None:
    model = load_model(path, context_length=8, batch=4)
    model.transformer.forward(1, 0)


# Mutations land in the header (most of the interesting fields) or anywhere.
REGIONS = st.sampled_from([28, 64, 300, None])


@fuzz_settings(400)
@given(which=st.integers(0, 3), region=REGIONS, mutation=mutations())
def test_mutated_llama2c_checkpoint_loads_or_is_rejected(
    workdir: Path, checkpoints: list[Sample], which: int, region: int | None,
    mutation: Mutation,
) -> None:
    data = mutate(checkpoints[which].data, mutation, region=region)
    path = _write_case(workdir, data)
    try:
        check_load(lambda: _run_model(path), allowed=(ModelFormatError,),
                   file_bytes=len(data))
    finally:
        path.unlink()


@fuzz_settings(300)
@given(
    region=st.sampled_from([16, 128, None]),
    vocab_size=st.one_of(
        st.just(TOKENIZER_VOCAB),
        st.sampled_from([0, 1, 3, TOKENIZER_VOCAB - 1, TOKENIZER_VOCAB + 1, 2**31 - 1, -1]),
    ),
    mutation=mutations(),
)
def test_mutated_llama2c_tokenizer_loads_or_is_rejected(
    workdir: Path, tokenizer_bin: Sample, region: int | None, vocab_size: int,
    mutation: Mutation,
) -> None:
    data = mutate(tokenizer_bin.data, mutation, region=region)
    path = _write_case(workdir, data)

    def load() -> None:
        tokenizer = load_llama2c_tokenizer(path, vocab_size)
        tokenizer.decode(tokenizer.encode("hello world, the hello"))

    try:
        check_load(load, allowed=(ModelFormatError,), file_bytes=len(data))
    finally:
        path.unlink()


def test_unmutated_files_load(workdir: Path, checkpoints: list[Sample],
                              tokenizer_bin: Sample) -> None:
    """The baselines really load, so the mutated cases test more than rejection."""
    for sample in checkpoints:
        path = _write_case(workdir, sample.data)
        assert check_load(lambda p=path: _run_model(p), allowed=(),
                          file_bytes=len(sample.data)) == "loaded"
    path = _write_case(workdir, tokenizer_bin.data)
    tokenizer = load_llama2c_tokenizer(path, TOKENIZER_VOCAB)
    assert tokenizer.decode(tokenizer.encode("hello world")).strip() == "hello world"
