"""Wake word by Vosk recognition: an alternative for languages PocketSphinx lacks.

With `grammar=True` the recognizer may only hear the phrase or "[unk]" (cheap, but
only sound for models whose vocabulary has "[unk]": without it, every sound is
forced onto the phrase). The default runs free recognition and looks for the phrase
in the partial results, which costs a full recognizer but keeps false alarms low.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from speech.audio import AudioChunk
from speech.vosk_stt import grammar_json, load_model, vosk_module
from speech.wake import WakeDetection, WakeWordDetector


class VoskWakeWord(WakeWordDetector):
    """Spots `phrase` with a Vosk model that has a runtime graph (the small models)."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, phrase: str, sample_rate: int = 16000,
                 model: Any = None, grammar: bool = False) -> None:
        self.sample_rate = sample_rate
        self.phrase = self.wake_word = " ".join(phrase.lower().split())
        self._fed = 0  # samples fed since creation
        self._model = model if model is not None else load_model(model_dir)
        vosk = vosk_module()
        if grammar:
            self._recognizer = vosk.KaldiRecognizer(self._model, float(sample_rate),
                                                    grammar_json([self.phrase]))
        else:
            self._recognizer = vosk.KaldiRecognizer(self._model, float(sample_rate))

    def process(self, chunk: AudioChunk) -> bool:
        return self.detect(chunk) is not None

    def detect(self, chunk: AudioChunk) -> WakeDetection | None:
        chunk.expect(self.sample_rate, consumer="the wake-word spotter")
        self._fed += chunk.frames
        if self._recognizer.AcceptWaveform(chunk.to_bytes()):
            heard = json.loads(self._recognizer.Result()).get("text", "")
        else:
            heard = json.loads(self._recognizer.PartialResult()).get("partial", "")
        if self.phrase not in " ".join(heard.split()):
            return None
        self.reset()
        end = round(self._fed / self.sample_rate, 3)
        return WakeDetection(self.phrase, end, end, None)  # partials carry no word times

    def reset(self) -> None:
        self._recognizer.Reset()
