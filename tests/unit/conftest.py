"""Fixtures of the unit tests: the scratch folder of the hostile-file tests
(`test_reliability_fuzz_*.py`, whose shared machinery is `reliability_fuzz.py`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A scratch folder for one test module's files, removed after its last test."""
    prefix = f"hearth-{request.module.__name__.rsplit('.', 1)[-1]}-"
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)
