"""Vosk (Kaldi) recognizer: any Vosk model folder, partial results, optional grammar.

Vosk's C++ side logs to stderr by default; it is silenced once with SetLogLevel(-2)
so a wrong folder gives one line from us, not a Kaldi log dump. A grammar (a list of
words or phrases) restricts recognition to those, for command mode; it needs a
model with a runtime graph (the small models have one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.stt import PARTIAL_INTERVAL_SECONDS, RecognizedWord, SpeechRecognizer, Transcript

log = logging.getLogger(__name__)

UNKNOWN = "[unk]"
_quiet = False


def vosk_module() -> Any:
    """The vosk module, with its C++ logging silenced (once)."""
    global _quiet
    import vosk

    if not _quiet:
        vosk.SetLogLevel(-2)  # -1 still lets warnings through
        _quiet = True
    return vosk


def check_model_dir(model_dir: str | Path) -> Path:
    """The folder, if it looks like a Vosk model; else `SpeechModelError` saying why."""
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise SpeechModelError(f"Vosk model folder {root} does not exist")
    if not ((root / "am" / "final.mdl").exists() or (root / "final.mdl").exists()):
        raise SpeechModelError(
            f"{root} is not a Vosk model folder (no am/final.mdl); point to the unpacked "
            "model, e.g. vosk-model-small-en-us-0.15/"
        )
    return root


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Collect what C code writes to file descriptor 2 (Kaldi prints its errors there
    whatever the log level); the yielded list holds the lines afterwards."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += capture.read().decode(errors="replace").splitlines()


def load_model(model_dir: str | Path) -> Any:
    """A `vosk.Model` for the folder (shareable between recognizers of one thread each)."""
    root = check_model_dir(model_dir)
    vosk = vosk_module()
    with _stderr_captured() as output:
        try:
            model = vosk.Model(str(root))
        except Exception:  # vosk raises a bare Exception("Failed to create a model")
            model = None
    if model is not None:
        return model
    errors = [line for line in output if "ERROR" in line]
    # "ERROR (VoskAPI:Model():model.cc:122) Folder ... does not contain model files. ..."
    reason = errors[-1].split(") ", 1)[-1].split(". ")[0] if errors else "damaged or incomplete"
    raise SpeechModelError(f"Vosk cannot load the model in {root}: {reason}")


def supports_grammar(model_dir: str | Path) -> bool:
    """Whether the model has a runtime graph (HCLr.fst + Gr.fst), needed for grammars."""
    graph = Path(model_dir) / "graph"
    return (graph / "HCLr.fst").exists() and (graph / "Gr.fst").exists()


def grammar_json(phrases: Sequence[str]) -> str:
    """Vosk's grammar format: a JSON list of phrases, plus [unk] for everything else."""
    cleaned = [p.strip().lower() for p in phrases if p.strip()]
    return json.dumps([*cleaned, UNKNOWN], ensure_ascii=False)


class VoskRecognizer(SpeechRecognizer):
    """Streaming Vosk recognizer; `grammar` limits it to those words/phrases."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, sample_rate: int = 16000,
                 grammar: Sequence[str] | None = None, model: Any = None, *,
                 bias_phrases: Sequence[str] = ()) -> None:
        """`model`: an already loaded `vosk.Model` of `model_dir` to share.

        `bias_phrases` are accepted (every recognizer takes them) but not used yet: no
        English Vosk model can be installed here to measure a biased decode against.
        `grammar` is the hard restriction (command mode)."""
        self.sample_rate = sample_rate
        self.model_dir = Path(model_dir)
        self._model = model if model is not None else load_model(model_dir)
        self.grammar = tuple(grammar or ())
        if self.grammar and not supports_grammar(self.model_dir):
            raise SpeechModelError(
                f"the Vosk model in {self.model_dir} has no runtime graph, so it cannot use "
                "a grammar; use a small model or clear [stt] grammar"
            )
        self._recognizer = self._new_recognizer()
        self._segments: list[dict[str, Any]] = []
        self._last_partial = ""
        self._unreported_frames = 0

    def _new_recognizer(self) -> Any:
        vosk = vosk_module()
        if self.grammar:
            rec = vosk.KaldiRecognizer(self._model, float(self.sample_rate),
                                       grammar_json(self.grammar))
        else:
            rec = vosk.KaldiRecognizer(self._model, float(self.sample_rate))
        rec.SetWords(True)
        return rec

    def accept(self, chunk: AudioChunk) -> Transcript | None:
        chunk.expect(self.sample_rate, consumer="Vosk")
        if self._recognizer.AcceptWaveform(chunk.to_bytes()):
            # Vosk found a pause and closed a segment; keep it for the final transcript
            self._segments.append(json.loads(self._recognizer.Result()))
            partial = ""
        else:
            self._unreported_frames += chunk.frames
            if self._unreported_frames < self.sample_rate * PARTIAL_INTERVAL_SECONDS:
                return None
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        self._unreported_frames = 0
        text = " ".join(t for t in [*self._segment_texts(), _clean_text(partial)] if t)
        if text and text != self._last_partial:
            self._last_partial = text
            return Transcript(text=text, is_final=False)
        return None

    def _segment_texts(self) -> list[str]:
        return [_clean_text(s.get("text", "")) for s in self._segments]

    def finish(self) -> Transcript:
        self._segments.append(json.loads(self._recognizer.FinalResult()))
        words = [
            RecognizedWord(
                word=w["word"],
                start_seconds=float(w.get("start", 0.0)),
                end_seconds=float(w.get("end", 0.0)),
                confidence=float(w.get("conf", 1.0)),
            )
            for seg in self._segments
            for w in seg.get("result", [])
            if w.get("word") != UNKNOWN
        ]
        text = " ".join(t for t in self._segment_texts() if t)
        self._segments = []
        self._last_partial = ""
        # FinalResult already reset the recognizer's own state for the next utterance
        return Transcript(text=text, words=tuple(words))

    def reset(self) -> None:
        self._recognizer.Reset()
        self._segments = []
        self._last_partial = ""


def _clean_text(text: str) -> str:
    return " ".join(w for w in text.split() if w != UNKNOWN)
