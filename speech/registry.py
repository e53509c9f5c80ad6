"""Speech backends found by name, imported only when asked for.

A backend whose optional dependency is missing raises
`SpeechBackendUnavailableError` naming the pip extra that installs it, so Hearth
runs with whichever subset of engines this machine has.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speech.errors import SpeechBackendUnavailableError
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.wake import WakeWordDetector

if TYPE_CHECKING:
    from speech.sentence_grammar import SentenceGrammar

# name -> (module:class, the python module it needs, the pip extra that installs it)
RECOGNIZERS = {
    "pocketsphinx": ("speech.sphinx:PocketSphinxRecognizer", "pocketsphinx", "sphinx"),
    "vosk": ("speech.vosk_stt:VoskRecognizer", "vosk", "vosk"),
    "whisper": ("speech.whisper_stt:WhisperRecognizer", "faster_whisper", "whisper"),
}
SYNTHESIZERS = {
    "piper": ("speech.piper_tts:PiperSynthesizer", "piper", "piper"),
    "espeak-ng": ("speech.espeak:EspeakSynthesizer", "", ""),
}
WAKE_DETECTORS = {
    "micro": ("speech.wake_micro:MicroWakeWordDetector", "pymicro_wakeword", "wake"),
    "pocketsphinx": ("speech.wake_sphinx:SphinxWakeWord", "pocketsphinx", "sphinx"),
    "vosk": ("speech.wake_vosk:VoskWakeWord", "vosk", "vosk"),
}


def _load(table: dict[str, tuple[str, str, str]], kind: str, name: str) -> Any:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
    target, dependency, extra = table[name]
    if dependency and importlib.util.find_spec(dependency) is None:
        raise SpeechBackendUnavailableError(
            f"the {name} {kind} needs the {dependency!r} package; install it: "
            f"pip install 'hearth[{extra}]'"
        )
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def is_available(name: str, kind: str = "recognizer") -> bool:
    """Whether backend `name` of `kind` ('recognizer', 'synthesizer', 'wake') can load."""
    table = {"recognizer": RECOGNIZERS, "synthesizer": SYNTHESIZERS,
             "wake": WAKE_DETECTORS}[kind]
    if name not in table:
        return False
    dependency = table[name][1]
    return not dependency or importlib.util.find_spec(dependency) is not None


def create_recognizer(name: str, model: str | Path | None, *, sample_rate: int = 16000,
                      grammar: Sequence[str] = (), bias_phrases: Sequence[str] = (),
                      language: str = "en",
                      skill_sentences: SentenceGrammar | None = None) -> SpeechRecognizer:
    """'pocketsphinx' (model None = the wheel's English model), 'vosk' or 'whisper'
    (model folder). `grammar` restricts Vosk to those phrases; `bias_phrases` make each
    recognizer prefer them while still hearing anything else; `skill_sentences` are
    what the application understands, for Whisper's second pass, PocketSphinx's skills
    model and Vosk's grammar pass."""
    cls = _load(RECOGNIZERS, "recognizer", name)
    if name in ("vosk", "whisper") and model is None:
        raise ValueError(f"the {name} recognizer needs a model folder")
    if name == "vosk":
        return cls(model, sample_rate=sample_rate, grammar=grammar, bias_phrases=bias_phrases,
                   skill_sentences=skill_sentences)
    if name == "whisper":
        return cls(model, sample_rate=sample_rate, bias_phrases=bias_phrases,
                   language=language, skill_sentences=skill_sentences)
    return cls(model, sample_rate=sample_rate, bias_phrases=bias_phrases,
               skill_sentences=skill_sentences)


def create_synthesizer(name: str, voice: str | Path, *,
                       speaking_rate: float = 1.0) -> SpeechSynthesizer:
    """'piper' (voice = .onnx path) or 'espeak-ng' (voice = an espeak-ng voice name)."""
    cls = _load(SYNTHESIZERS, "synthesizer", name)
    return cls(voice, speaking_rate=speaking_rate)


def create_wake_detector(name: str, phrase: str, *, threshold: float = 1e-20,
                         model: str | Path | None = None,
                         sample_rate: int = 16000,
                         probability_cutoff: float = 0.0) -> WakeWordDetector:
    """'micro' (a bundled phrase), 'pocketsphinx' (model None = the wheel's) or 'vosk'
    (model folder required)."""
    cls = _load(WAKE_DETECTORS, "wake-word spotter", name)
    if name == "micro":
        return cls(phrase, probability_cutoff=probability_cutoff, sample_rate=sample_rate)
    if name == "vosk":
        if model is None:
            raise ValueError("the Vosk wake-word spotter needs a model folder")
        return cls(model, phrase, sample_rate=sample_rate)
    return cls(phrase, threshold=threshold, model_dir=model, sample_rate=sample_rate)
