"""Wake word by Vosk grammar recognition: an alternative for languages PocketSphinx
lacks. The recognizer may only hear the phrase or "[unk]", so a phrase hit is cheap
to spot in its partial results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from speech.audio import AudioChunk
from speech.vosk_stt import grammar_json, load_model, vosk_module
from speech.wake import WakeWordDetector


class VoskWakeWord(WakeWordDetector):
    """Spots `phrase` with a Vosk model that has a runtime graph (the small models)."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, phrase: str, sample_rate: int = 16000,
                 model: Any = None) -> None:
        self.sample_rate = sample_rate
        self.phrase = " ".join(phrase.lower().split())
        self._model = model if model is not None else load_model(model_dir)
        self._recognizer = vosk_module().KaldiRecognizer(self._model, float(sample_rate),
                                                   grammar_json([self.phrase]))

    def process(self, chunk: AudioChunk) -> bool:
        chunk.expect(self.sample_rate, consumer="the wake-word spotter")
        if self._recognizer.AcceptWaveform(chunk.to_bytes()):
            heard = json.loads(self._recognizer.Result()).get("text", "")
        else:
            heard = json.loads(self._recognizer.PartialResult()).get("partial", "")
        if self.phrase not in " ".join(heard.split()):
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self._recognizer.Reset()
