"""Wake word by PocketSphinx keyphrase spotting: a phrase and a detection threshold.

Keyphrase search scores the phrase against a garbage model continuously, so it
needs no language model and little CPU. The threshold trades misses for false
alarms: 1e-10 is strict, 1e-40 is lenient; bench/speech.py measures false alarms
per hour of non-wake speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.sphinx import (
    FRAMES_PER_SECOND,
    default_model_dir,
    make_decoder,
    sphinx_model_files,
)
from speech.wake import WakeDetection, WakeWordDetector


class SphinxWakeWord(WakeWordDetector):
    """Spots `phrase` (words of the model's dictionary) in a continuous stream."""

    name = "pocketsphinx"

    def __init__(self, phrase: str = "hey hearth", threshold: float = 1e-20,
                 model_dir: str | Path | None = None, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.phrase = self.wake_word = " ".join(phrase.lower().split())
        if not self.phrase:
            raise SpeechModelError("the wake phrase is empty")
        files = sphinx_model_files(model_dir if model_dir is not None else default_model_dir())
        # no language model: keyphrase search replaces it
        self._decoder: Any = make_decoder(sample_rate, hmm=files["hmm"], dict=files["dict"],
                                          lm=None, keyphrase=self.phrase,
                                          kws_threshold=threshold)
        unknown = [w for w in self.phrase.split() if self._decoder.lookup_word(w) is None]
        if unknown:
            raise SpeechModelError(
                f"wake phrase word(s) {', '.join(unknown)} are not in the PocketSphinx "
                "dictionary; choose other words"
            )
        self._fed = 0  # samples fed since creation
        self._utt_start = 0.0
        self._decoder.start_utt()

    def process(self, chunk: AudioChunk) -> bool:
        return self.detect(chunk) is not None

    def detect(self, chunk: AudioChunk) -> WakeDetection | None:
        chunk.expect(self.sample_rate, consumer="the wake-word spotter")
        self._decoder.process_raw(chunk.to_bytes(), False, False)
        self._fed += chunk.frames
        if self._decoder.hyp() is None:
            return None
        end = self._fed / self.sample_rate
        start = end
        for segment in self._decoder.seg():  # the keyphrase's frames within this utterance
            start = min(start, self._utt_start + segment.start_frame / FRAMES_PER_SECOND)
        self.reset()
        return WakeDetection(self.phrase, round(start, 3), round(end, 3), None)

    def reset(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_start = self._fed / self.sample_rate

    def close(self) -> None:
        self._decoder.end_utt()
