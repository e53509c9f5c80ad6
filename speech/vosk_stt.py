"""Vosk (Kaldi) recognizer: any Vosk model folder, partial results, optional grammar.

Vosk's C++ side logs to stderr by default; it is silenced once with SetLogLevel(-2)
so a wrong folder gives one line from us, not a Kaldi log dump. A grammar (a list of
words or phrases) restricts recognition to those, for command mode; it needs a
model with a runtime graph (the small models have one).

With `skill_sentences` (the skills' `SentenceGrammar`) and a model with a runtime
graph, a second recognizer restricted to the skills' sentences (those whose words the
model knows, plus [unk]) hears the same audio beside the free one. Its final is taken
only when it has no [unk], is shaped like a skill sentence (every trigram in the
skills' sentences, slot values aside: `PhraseModel.unseen`) and each word's confidence
is at least `SKILL_MIN_CONFIDENCE`; anything else, an open question above all, keeps
the free transcript. A model without a runtime graph (the big ones) keeps the free pass
alone. Not calibrated: the only Vosk model installable here is the Korean one, and the
skills have no Korean sentences (see README).
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
from typing import TYPE_CHECKING, Any

from speech.audio import AudioChunk
from speech.errors import SpeechModelError
from speech.phrase_lm import (
    PhraseModel,
    compile_model,
    grammar_sentences,
    training_sentences,
    word_classes,
)
from speech.stt import PARTIAL_INTERVAL_SECONDS, RecognizedWord, SpeechRecognizer, Transcript

if TYPE_CHECKING:
    from speech.sentence_grammar import SentenceGrammar

log = logging.getLogger(__name__)

UNKNOWN = "[unk]"
SKILL_PHRASES = 5000
"""Skill sentences in the grammar pass at most (Vosk compiles them for each recognizer)."""
SKILL_MIN_CONFIDENCE = 0.7
"""The least word confidence of a grammar-pass final that is taken."""
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
                 bias_phrases: Sequence[str] = (),
                 skill_sentences: SentenceGrammar | None = None) -> None:
        """`model`: an already loaded `vosk.Model` of `model_dir` to share.

        `bias_phrases` are accepted (every recognizer takes them) but not used: short
        phrases are no sentences. `grammar` is the hard restriction (command mode);
        `skill_sentences` add the grammar pass of the module doc."""
        self.sample_rate = sample_rate
        self.model_dir = Path(model_dir)
        self._model = model if model is not None else load_model(model_dir)
        self.grammar = tuple(grammar or ())
        if self.grammar and not supports_grammar(self.model_dir):
            raise SpeechModelError(
                f"the Vosk model in {self.model_dir} has no runtime graph, so it cannot use "
                "a grammar; use a small model or clear [stt] grammar"
            )
        self._recognizer = self._new_recognizer(self.grammar)
        self._segments: list[dict[str, Any]] = []
        self._last_partial = ""
        self._unreported_frames = 0
        self.skill_model: PhraseModel | None = None
        """The skills' sentences the grammar pass checks against (None: no such pass)."""
        self._skill_recognizer: Any = None
        self._skill_segments: list[dict[str, Any]] = []
        self.last_skill_text: str | None = None
        """The grammar pass's latest final ("" when empty; None without the pass)."""
        if skill_sentences is not None and not self.grammar:
            self._add_skill_pass(skill_sentences)

    def _new_recognizer(self, grammar: Sequence[str]) -> Any:
        vosk = vosk_module()
        if grammar:
            rec = vosk.KaldiRecognizer(self._model, float(self.sample_rate),
                                       grammar_json(grammar))
        else:
            rec = vosk.KaldiRecognizer(self._model, float(self.sample_rate))
        rec.SetWords(True)
        return rec

    def _add_skill_pass(self, grammar: SentenceGrammar) -> None:
        """The grammar pass over the skill sentences whose words the model knows."""
        if not supports_grammar(self.model_dir):
            log.info("Vosk model %s has no runtime graph: no skill grammar pass",
                     self.model_dir)
            return
        known: dict[str, bool] = {}

        def knows(word: str) -> bool:
            if word not in known:  # the model's word list, as the grammar compiler reads it
                known[word] = self._model.vosk_model_find_word(word) >= 0
            return known[word]

        phrases = [" ".join(words) for words in training_sentences(
            grammar_sentences(grammar, limit=SKILL_PHRASES), knows)]
        if not phrases:
            log.info("Vosk model %s knows no skill sentence: no grammar pass", self.model_dir)
            return
        self.skill_model = compile_model(phrases, classes=word_classes(grammar))
        self._skill_recognizer = self._new_recognizer(phrases)

    def accept(self, chunk: AudioChunk) -> Transcript | None:
        chunk.expect(self.sample_rate, consumer="Vosk")
        data = chunk.to_bytes()
        if self._skill_recognizer is not None and self._skill_recognizer.AcceptWaveform(data):
            self._skill_segments.append(json.loads(self._skill_recognizer.Result()))
        if self._recognizer.AcceptWaveform(data):
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
        words = _words(self._segments)
        text = " ".join(t for t in self._segment_texts() if t)
        self._segments = []
        self._last_partial = ""
        # FinalResult already reset the recognizer's own state for the next utterance
        free = Transcript(text=text, words=tuple(w for w in words if w.word != UNKNOWN))
        if self._skill_recognizer is None or self.skill_model is None:
            return free
        self._skill_segments.append(json.loads(self._skill_recognizer.FinalResult()))
        skill, self._skill_segments = _words(self._skill_segments), []
        self.last_skill_text = " ".join(w.word for w in skill)
        if (skill and all(w.word != UNKNOWN and w.confidence >= SKILL_MIN_CONFIDENCE
                          for w in skill)
                and self.skill_model.unseen([w.word for w in skill]) == 0):
            return Transcript(text=self.last_skill_text, words=tuple(skill))
        return free

    def reset(self) -> None:
        self._recognizer.Reset()
        if self._skill_recognizer is not None:
            self._skill_recognizer.Reset()
        self._segments = []
        self._skill_segments = []
        self._last_partial = ""


def _words(segments: list[dict[str, Any]]) -> list[RecognizedWord]:
    """The words of Vosk results (SetWords), [unk] included."""
    return [RecognizedWord(word=w["word"], start_seconds=float(w.get("start", 0.0)),
                           end_seconds=float(w.get("end", 0.0)),
                           confidence=float(w.get("conf", 1.0)))
            for seg in segments for w in seg.get("result", [])]


def _clean_text(text: str) -> str:
    return " ".join(w for w in text.split() if w != UNKNOWN)
