"""Recognizing Hearth's spoken answer back, for the end-to-end tests.

PocketSphinx's generic language model hears Piper's "... France is Paris." right only
~40 % of the time ("francis parents", "france is spirits", "spare ribs": measured with
every speaking rate and decoder setting tried), so the judge is PocketSphinx with a
word-loop grammar over the words of the reply plus ten cities: it must then pick the
city from the sound alone. In trials it told Paris, Lyon, London, Rome and Brussels
apart 25 times out of 25. The free-LM transcript is returned too, for the test log.
"""

from __future__ import annotations

import re
from pathlib import Path

from speech.audio import AudioChunk
from speech.resample import resample
from speech.sphinx import make_decoder, sphinx_model_files
from speech.vad import trim_silence

CITIES = ("paris", "lyon", "london", "berlin", "rome", "madrid", "marseille", "brussels",
          "vienna", "nice")


def recognize_back(model_dir: Path, audio: AudioChunk, grammar: Path | None = None) -> str:
    """`audio` as text by a fresh decoder over the whole utterance (no adaptation carried
    over from earlier audio), with the generic language model or a JSGF `grammar`."""
    audio = trim_silence(resample(audio, 16000))  # long silences before: no use
    files = sphinx_model_files(model_dir)
    if grammar is not None:
        files.pop("lm", None)
        files["jsgf"] = str(grammar)
    decoder = make_decoder(16000, **files)
    decoder.start_utt()
    decoder.process_raw(audio.to_bytes(), False, True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def cities_heard(model_dir: Path, audio: AudioChunk, reply: str,
                 workdir: Path) -> tuple[list[str], str, str]:
    """(cities recognized in `audio`, grammar transcript, free transcript)."""
    words = {w for w in re.findall(r"[a-z']+", reply.lower()) if w not in CITIES}
    grammar = workdir / "answer.gram"
    grammar.write_text("#JSGF V1.0;\ngrammar answer;\npublic <s> = ( "
                       + " | ".join(sorted(words | set(CITIES))) + " )* ;\n")
    judged = recognize_back(model_dir, audio, grammar)
    free = recognize_back(model_dir, audio)
    return [w for w in judged.split() if w in CITIES], judged, free
