"""Hostile GGUF files: mutated tiny GGUFs written with the `gguf` package, and the real
bundled SmolLM2 GGUF with its header region mutated or truncated.

Each case must load (and run one forward step / tokenize) or raise `ModelFormatError`;
nothing else, no hang, no allocation out of proportion to the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ModelFormatError
from engine.numpy_runner.gguf_reader import GGUFFile, load_gguf_model
from engine.numpy_runner.loader import load_model
from engine.tokenizer.loaders import load_tokenizer_from_gguf
from tests.unit import reliability_fuzz as fuzz

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN weights are fine here

REAL_HEADER_REGION = 4096
"""Bytes at the start of the real GGUF that get mutated: the fixed header, the general.*
and llama.* hyperparameters and the start of the vocabulary."""


@pytest.fixture(scope="module")
def tiny_ggufs(workdir: Path) -> list[fuzz.Sample]:
    return [
        fuzz.Sample(name, fuzz.write_tiny_gguf(workdir / f"{name}.gguf", quantized=q).read_bytes())
        for name, q in (("q8_0", True), ("f32", False))
    ]


@pytest.fixture(scope="module")
def real_header(smollm2_gguf: Path) -> tuple[fuzz.Sample, int]:
    """The real file's metadata + tensor directory (not its 96 MB of weights) and size."""
    gguf = GGUFFile(smollm2_gguf)
    try:
        header_bytes = gguf.data_offset
    finally:
        gguf.close()
    with smollm2_gguf.open("rb") as fh:
        return fuzz.Sample("smollm2 header", fh.read(header_bytes)), smollm2_gguf.stat().st_size


def _run_model(path: Path) -> None:
    model = load_model(path, context_length=16, batch=4)
    model.transformer.forward(0, 0)


def _run_tokenizer(path: Path) -> None:
    tokenizer = load_tokenizer_from_gguf(path)
    ids = tokenizer.encode("hello <|im_start|>user\nhi there<|im_end|>")
    tokenizer.decode(ids)


@fuzz.fuzz_settings(400)
@given(which=st.sampled_from([0, 1]), mutation=fuzz.mutations())
def test_mutated_tiny_gguf_loads_or_is_rejected(
    workdir: Path, tiny_ggufs: list[fuzz.Sample], which: int, mutation: fuzz.Mutation
) -> None:
    data = fuzz.mutate(tiny_ggufs[which].data, mutation)
    with fuzz.case_file(workdir, data, ".gguf") as path:
        fuzz.check_load(lambda: _run_model(path), allowed=(ModelFormatError,),
                        file_bytes=len(data))


@fuzz.fuzz_settings(300)
@given(mutation=fuzz.mutations())
def test_mutated_tiny_gguf_tokenizer_loads_or_is_rejected(
    workdir: Path, tiny_ggufs: list[fuzz.Sample], mutation: fuzz.Mutation
) -> None:
    data = fuzz.mutate(tiny_ggufs[0].data, mutation)
    with fuzz.case_file(workdir, data, ".gguf") as path:
        fuzz.check_load(lambda: _run_tokenizer(path), allowed=(ModelFormatError,),
                        file_bytes=len(data))


@fuzz.fuzz_settings(100)
@given(mutation=fuzz.mutations(max_edits=4))
def test_mutated_real_smollm2_header_loads_or_is_rejected(
    workdir: Path, real_header: tuple[fuzz.Sample, int], mutation: fuzz.Mutation
) -> None:
    header, full_size = real_header
    data = fuzz.mutate(header.data, mutation, region=REAL_HEADER_REGION)
    with fuzz.case_file(workdir, data, ".gguf") as path:
        if mutation.truncate_at is None:
            # The weights region as a sparse hole: the right size, no 96 MB write per case.
            with path.open("r+b") as fh:
                fh.truncate(full_size)

        def load() -> None:
            _, _, gguf = load_gguf_model(path)
            gguf.close()

        fuzz.check_load(load, allowed=(ModelFormatError,), file_bytes=path.stat().st_size)


def test_unmutated_files_load(workdir: Path, tiny_ggufs: list[fuzz.Sample],
                              real_header: tuple[fuzz.Sample, int]) -> None:
    """The baseline the mutations start from really loads (else every case is a reject)."""
    for sample in tiny_ggufs:
        data = sample.data
        with fuzz.case_file(workdir, data, ".gguf") as path:
            assert fuzz.check_load(lambda p=path: _run_model(p), allowed=(),
                                   file_bytes=len(data)) == "loaded"
            assert fuzz.check_load(lambda p=path: _run_tokenizer(p), allowed=(),
                                   file_bytes=len(data)) == "loaded"
    header, full_size = real_header
    with fuzz.case_file(workdir, header.data, ".gguf") as path:
        with path.open("r+b") as fh:
            fh.truncate(full_size)
        _, _, gguf = load_gguf_model(path)
        assert gguf.metadata["general.architecture"] == "llama"
        gguf.close()
