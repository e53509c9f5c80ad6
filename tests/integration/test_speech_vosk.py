"""Vosk with the real Korean model, fed Korean speech synthesized by espeak-ng: partial
results while audio streams, a final result at the end, and a grammar that restricts
what can be heard. espeak-ng's Korean is crude, so these tests check behaviour
(streaming, vocabulary), not accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from speech.audio import AudioChunk
from speech.espeak import EspeakSynthesizer
from speech.resample import resample
from speech.stt import Transcript
from speech.vosk_stt import VoskRecognizer, load_model
from speech.wake_vosk import VoskWakeWord

KOREAN = ["안녕하세요 오늘 날씨가 정말 좋네요", "음악을 틀어 주세요"]
GRAMMAR = ["안녕하세요", "오늘", "날씨", "좋아요", "음악", "불"]


@pytest.fixture(scope="module")
def korean_speech() -> AudioChunk:
    voice = EspeakSynthesizer("ko")
    pause = AudioChunk.silence(0.8, 16000)
    parts = [pause]
    for sentence in KOREAN:
        parts += [resample(AudioChunk.concatenate(list(voice.synthesize(sentence))), 16000),
                  pause]
    return AudioChunk.concatenate(parts)


@pytest.fixture(scope="module")
def vosk_ko_model(vosk_ko_dir: Path) -> Any:
    return load_model(vosk_ko_dir)


def stream(recognizer: VoskRecognizer, audio: AudioChunk, block: int = 480
           ) -> tuple[list[tuple[int, Transcript]], Transcript, int]:
    """Feed `audio` in 30 ms blocks: (block index, partial) pairs, final, block count."""
    partials = []
    blocks = 0
    for start in range(0, audio.frames, block):
        partial = recognizer.accept(AudioChunk(audio.samples[start:start + block].copy(),
                                               audio.sample_rate))
        if partial is not None:
            partials.append((blocks, partial))
        blocks += 1
    return partials, recognizer.finish(), blocks


def test_partials_stream_and_final_arrives(
    vosk_ko_dir: Path, vosk_ko_model: Any, korean_speech: AudioChunk
) -> None:
    recognizer = VoskRecognizer(vosk_ko_dir, model=vosk_ko_model)
    partials, final, blocks = stream(recognizer, korean_speech)
    assert len({p.text for _, p in partials}) >= 2
    assert all(not p.is_final for _, p in partials)
    assert partials[0][0] < blocks // 2  # the first partial came early, mid-stream
    assert final.is_final and final.text
    assert final.words and all(0.0 <= w.confidence <= 1.0 for w in final.words)
    assert all(w.start_seconds <= w.end_seconds for w in final.words)
    assert final.words[-1].end_seconds <= korean_speech.seconds
    # finish() reset it: a second utterance starts from nothing
    assert recognizer.finish().text == ""


def test_grammar_restricts_vocabulary(
    vosk_ko_dir: Path, vosk_ko_model: Any, korean_speech: AudioChunk
) -> None:
    free = VoskRecognizer(vosk_ko_dir, model=vosk_ko_model)
    _, free_final, _ = stream(free, korean_speech)
    assert set(free_final.text.split()) - set(GRAMMAR), "free speech should go beyond the list"
    restricted = VoskRecognizer(vosk_ko_dir, model=vosk_ko_model, grammar=GRAMMAR)
    partials, final, _ = stream(restricted, korean_speech)
    assert final.text
    assert set(final.text.split()) <= set(GRAMMAR)
    for _, partial in partials:
        assert set(partial.text.split()) <= set(GRAMMAR)


def test_vosk_wake_word_heard_only_where_spoken(vosk_ko_dir: Path, vosk_ko_model: Any) -> None:
    # "음악" (music) is the one short word Vosk reliably hears in espeak-ng's Korean
    voice = EspeakSynthesizer("ko")
    pause = AudioChunk.silence(0.6, 16000)

    def recording(sentences: list[str]) -> AudioChunk:
        parts = [pause]
        for sentence in sentences:
            parts += [resample(AudioChunk.concatenate(list(voice.synthesize(sentence))),
                               16000), pause]
        return AudioChunk.concatenate(parts)

    def hits(audio: AudioChunk) -> list[float]:
        detector = VoskWakeWord(vosk_ko_dir, "음악", model=vosk_ko_model)
        found = []
        for start in range(0, audio.frames, 480):
            if detector.process(AudioChunk(audio.samples[start:start + 480].copy(), 16000)):
                found.append(start / 16000)
        return found

    with_phrase = recording(["오늘 날씨가 좋네요", "음악", "지금 몇 시예요"])
    found = hits(with_phrase)
    assert len(found) == 1 and 1.5 < found[0] < with_phrase.seconds - 1.0
    assert hits(recording(["오늘 날씨가 좋네요", "불을 켜 주세요", "지금 몇 시예요",
                           "안녕하세요"])) == []
