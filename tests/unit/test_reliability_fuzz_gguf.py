"""Hostile GGUF files: mutated tiny GGUFs written with the `gguf` package, and the real
bundled SmolLM2 GGUF with its header region mutated or truncated.

Each case must load (and run one forward step / tokenize) or raise `ModelFormatError`;
nothing else, no hang, no allocation out of proportion to the file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ModelFormatError
from engine.numpy_runner.gguf_reader import GGUFFile, load_gguf_model
from engine.numpy_runner.loader import load_model
from engine.tokenizer.loaders import load_tokenizer_from_gguf
from tests.unit.reliability_fuzz import (
    Mutation,
    Sample,
    check_load,
    fuzz_settings,
    mutate,
    mutations,
    write_tiny_gguf,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN weights are fine here

REAL_HEADER_REGION = 4096
"""Bytes at the start of the real GGUF that get mutated: the fixed header, the general.*
and llama.* hyperparameters and the start of the vocabulary."""


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hearth-fuzz-gguf-") as name:
        yield Path(name)


@pytest.fixture(scope="module")
def tiny_ggufs(workdir: Path) -> list[Sample]:
    return [
        Sample("q8_0", write_tiny_gguf(workdir / "q8.gguf", quantized=True).read_bytes()),
        Sample("f32", write_tiny_gguf(workdir / "f32.gguf", quantized=False).read_bytes()),
    ]


@pytest.fixture(scope="module")
def real_header(smollm2_gguf: Path) -> tuple[Sample, int]:
    """The real file's metadata + tensor directory (not its 96 MB of weights) and size."""
    gguf = GGUFFile(smollm2_gguf)
    try:
        header_bytes = gguf.data_offset
    finally:
        gguf.close()
    with smollm2_gguf.open("rb") as fh:
        return Sample("smollm2 header", fh.read(header_bytes)), smollm2_gguf.stat().st_size


def _write_case(directory: Path, data: bytes, suffix: str = ".gguf") -> Path:
    # A fresh name per case: a file still memory-mapped by an earlier case must never
    # be rewritten under it.
    fd, name = tempfile.mkstemp(suffix=suffix, dir=directory)
    with open(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def _run_model(path: Path) -> None:
    model = load_model(path, context_length=16, batch=4)
    model.transformer.forward(0, 0)


def _run_tokenizer(path: Path) -> None:
    tokenizer = load_tokenizer_from_gguf(path)
    ids = tokenizer.encode("hello <|im_start|>user\nhi there<|im_end|>")
    tokenizer.decode(ids)


@fuzz_settings(400)
@given(which=st.sampled_from([0, 1]), mutation=mutations())
def test_mutated_tiny_gguf_loads_or_is_rejected(
    workdir: Path, tiny_ggufs: list[Sample], which: int, mutation: Mutation
) -> None:
    data = mutate(tiny_ggufs[which].data, mutation)
    path = _write_case(workdir, data)
    try:
        check_load(lambda: _run_model(path), allowed=(ModelFormatError,),
                   file_bytes=len(data))
    finally:
        path.unlink()


@fuzz_settings(300)
@given(mutation=mutations())
def test_mutated_tiny_gguf_tokenizer_loads_or_is_rejected(
    workdir: Path, tiny_ggufs: list[Sample], mutation: Mutation
) -> None:
    data = mutate(tiny_ggufs[0].data, mutation)
    path = _write_case(workdir, data)
    try:
        check_load(lambda: _run_tokenizer(path), allowed=(ModelFormatError,),
                   file_bytes=len(data))
    finally:
        path.unlink()


@fuzz_settings(100)
@given(mutation=mutations(max_edits=4))
def test_mutated_real_smollm2_header_loads_or_is_rejected(
    workdir: Path, real_header: tuple[Sample, int], mutation: Mutation
) -> None:
    header, full_size = real_header
    data = mutate(header.data, mutation, region=REAL_HEADER_REGION)
    path = _write_case(workdir, data)
    if mutation.truncate_at is None:
        # The weights region as a sparse hole: the right size, no 96 MB write per case.
        with path.open("r+b") as fh:
            fh.truncate(full_size)
    size = path.stat().st_size

    def load() -> None:
        _, _, gguf = load_gguf_model(path)
        gguf.close()

    try:
        check_load(load, allowed=(ModelFormatError,), file_bytes=size)
    finally:
        path.unlink()


def test_unmutated_files_load(workdir: Path, tiny_ggufs: list[Sample],
                              real_header: tuple[Sample, int]) -> None:
    """The baseline the mutations start from really loads (else every case is a reject)."""
    for sample in tiny_ggufs:
        data = sample.data
        path = _write_case(workdir, data)
        assert check_load(lambda p=path: _run_model(p), allowed=(), file_bytes=len(data)) \
            == "loaded"
        assert check_load(lambda p=path: _run_tokenizer(p), allowed=(),
                          file_bytes=len(data)) == "loaded"
    header, full_size = real_header
    path = _write_case(workdir, header.data)
    with path.open("r+b") as fh:
        fh.truncate(full_size)
    _, _, gguf = load_gguf_model(path)
    assert gguf.metadata["general.architecture"] == "llama"
    gguf.close()
