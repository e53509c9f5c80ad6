"""Piper neural TTS (piper-tts 1.8): natural voices, ~60 MB per medium voice.

The voice is loaded once and kept warm; `synthesize` phonemizes and runs the ONNX
model per sentence, then yields the audio in short slices so playback can be
cancelled between slices. After each sentence ONNX Runtime gives the memory its arena
took for that sentence back: its arena grows in power-of-two steps and, kept, slowly
fills with touched pages, which over a thousand turns looked like a 100+ MB leak
(bench/soak.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.tts import SpeechSynthesizer

log = logging.getLogger(__name__)

SLICE_SECONDS = 0.25
"""Length of the chunks yielded: the granularity of cancellation."""


class PiperSynthesizer(SpeechSynthesizer):
    """A Piper voice (`.onnx` with its `.onnx.json` beside it)."""

    name = "piper"

    def __init__(self, model_path: str | Path, speaking_rate: float = 1.0,
                 speaker_id: int | None = None, deterministic: bool = False) -> None:
        """`speaking_rate` 1.5 is 50 % faster (Piper's length_scale is its inverse).

        `deterministic` turns off the voice's sampling noise, so the same text always
        gives the same audio (for tests and benchmarks; it sounds a little flatter).
        """
        from piper import PiperVoice
        from piper.config import SynthesisConfig

        path = Path(model_path).expanduser()
        config_path = path.with_name(path.name + ".json")
        if not path.is_file():
            raise SpeechModelError(f"Piper voice {path} does not exist")
        if not config_path.is_file():
            raise SpeechModelError(f"Piper voice {path} has no {config_path.name} beside it")
        try:
            self._voice: Any = PiperVoice.load(path, config_path=config_path)
        except Exception as exc:  # onnxruntime / json errors: one line for a person
            raise SpeechModelError(f"cannot load Piper voice {path.name}: {exc}") from None
        self._voice.session = _ShrinkingSession(self._voice.session)
        self.model_path = path
        self._syn_config = SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=self._voice.config.length_scale / max(speaking_rate, 0.05),
        )
        if deterministic:
            self._syn_config.noise_scale = 0.0
            self._syn_config.noise_w_scale = 0.0

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    def synthesize(
        self, text: str, cancel: threading.Event | None = None
    ) -> Iterator[AudioChunk]:
        if not text.strip():
            return
        step = max(1, int(self.sample_rate * SLICE_SECONDS))
        for piece in self._voice.synthesize(text, syn_config=self._syn_config):
            if cancel is not None and cancel.is_set():
                return
            samples: np.ndarray = piece.audio_int16_array
            for start in range(0, len(samples), step):
                if cancel is not None and cancel.is_set():
                    return
                yield AudioChunk(np.ascontiguousarray(samples[start:start + step]),
                                 self.sample_rate)


class _ShrinkingSession:
    """The voice's ONNX session, run with arena shrinkage: the memory a run took from the
    arena and no longer uses goes back to the system. A rough A/B on a loaded 2-core
    machine had a sentence take ~15 % longer; a Piper alone over 100 sentences stayed
    near 150 MB of RSS instead of growing past 400 MB (both with malloc_trim)."""

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._options = onnxruntime.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        """`InferenceSession.run` (the one call Piper makes), shrinking afterwards."""
        return list(self._session.run(output_names, feeds, self._options))

    def __getattr__(self, name: str) -> Any:
        # anything else Piper asks of its session (inputs, providers) is the session's
        return getattr(self._session, name)
