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
from speech.sphinx import default_model_dir, make_decoder, sphinx_model_files
from speech.wake import WakeWordDetector


class SphinxWakeWord(WakeWordDetector):
    """Spots `phrase` (words of the model's dictionary) in a continuous stream."""

    name = "pocketsphinx"

    def __init__(self, phrase: str = "hey hearth", threshold: float = 1e-20,
                 model_dir: str | Path | None = None, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.phrase = " ".join(phrase.lower().split())
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
        self._decoder.start_utt()

    def process(self, chunk: AudioChunk) -> bool:
        chunk.expect(self.sample_rate, consumer="the wake-word spotter")
        self._decoder.process_raw(chunk.to_bytes(), False, False)
        if self._decoder.hyp() is None:
            return False
        self.reset()
        return True

    def reset(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()

    def close(self) -> None:
        self._decoder.end_utt()
