"""Hearth's settings: one TOML file, validated once at start into frozen objects.

Every default lives here, in the dataclasses below; `hearth config init` renders
them (with each field's doc) into a commented TOML file. Loading checks every key
against these dataclasses: an unknown key, a wrong type or an impossible value
raises `ConfigError` naming the file, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from app.errors import ConfigError

APP_NAME = "hearth"

LANGUAGES = ("en", "zh")


def _doc(text: str, check: Callable[[Any], str | None] | None = None, **kw: Any) -> Any:
    """A dataclass field carrying a one-line doc and an optional value check.

    `check(value)` returns None when the value is fine, else what was expected.
    """
    return field(metadata={"doc": text, "check": check}, **kw)


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(repr(c) for c in choices)

    return check


def _at_least(low: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"a number >= {low}"


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"a number from {low} to {high}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else "a number greater than 0"


def _existing_file_or_empty(v: str) -> str | None:
    looks_like_path = "/" in v or "\\" in v or v.endswith((".gguf", ".bin", ".onnx"))
    if not v or not looks_like_path:
        return None  # empty, "auto" or a catalog id: resolved later by the model store
    return None if Path(v).expanduser().exists() else f"an existing file (no such path: {v})"


def _gpio_pin(v: int) -> str | None:
    return None if -1 <= v <= 27 else "a BCM GPIO number from 0 to 27, or -1 for none"


@dataclass(frozen=True)
class GeneralSettings:
    language: str = _doc(
        "Language of speech and replies: 'en' (English) or 'zh' (Mandarin Chinese); picks "
        "the default recognizer, voice and chat model",
        _one_of(*LANGUAGES),
        default="en",
    )
    log_level: str = _doc(
        "Logging detail: 'debug', 'info', 'warning' or 'error'",
        _one_of("debug", "info", "warning", "error"),
        default="info",
    )
    data_dir: str = _doc(
        "Where models and history live; empty means the platform's data folder",
        default="",
    )


@dataclass(frozen=True)
class EngineSettings:
    backend: str = _doc(
        "Inference engine: 'auto' (pick from this machine's RAM), 'llama-cpp', 'numpy' or "
        "'remote'",
        _one_of("auto", "llama-cpp", "numpy", "remote"),
        default="auto",
    )
    model: str = _doc(
        "Chat model: 'auto', a catalog id (see: hearth models list) or a path to a .gguf file",
        _existing_file_or_empty,
        default="auto",
    )
    context_length: int = _doc(
        "Tokens of context (prompt + reply)", _between(128, 131072), default=2048
    )
    threads: int = _doc(
        "Compute threads; 0 means one per physical core", _between(0, 256), default=0
    )
    batch_size: int = _doc(
        "Prompt tokens evaluated per batch", _between(1, 8192), default=256
    )
    use_mmap: bool = _doc("Memory-map model files instead of reading them", default=True)
    use_mlock: bool = _doc("Lock the model in RAM so it is never swapped out", default=False)
    memory_mode: str = _doc(
        "numpy engine: 'auto', 'cache' (fastest, most RAM), 'mmap' (weights stay in the "
        "file), 'stream' (for models larger than RAM) or 'reference' (llama.cpp's x86 "
        "arithmetic to the last bit, for checking; slow, Q8_0/Q4_0/Q4_1 files only)",
        _one_of("auto", "cache", "mmap", "stream", "reference"),
        default="auto",
    )
    cpu_affinity: str = _doc(
        "Pin inference to CPUs: '' (no pinning), 'big' (the fast cores of a big.LITTLE "
        "CPU) or a list like '2,3'",
        default="",
    )
    chat_template: str = _doc(
        "Override the model's chat template: '' (the model's own), 'chatml', 'zephyr' or "
        "'llama-2'",
        _one_of("", "chatml", "zephyr", "llama-2"),
        default="",
    )
    system_prompt: str = _doc(
        "What the assistant is told before every conversation",
        default=(
            "You are Hearth, a helpful voice assistant running offline on this computer. "
            "Answer in one to three short spoken sentences, without lists or markdown."
        ),
    )
    max_tokens: int = _doc("Longest reply, in tokens", _between(1, 32768), default=256)
    temperature: float = _doc(
        "Sampling temperature; 0 is greedy (always the likeliest word)",
        _between(0.0, 5.0),
        default=0.7,
    )
    top_k: int = _doc("Sample among the k likeliest tokens; 0 disables", _at_least(0), default=40)
    top_p: float = _doc("Nucleus sampling threshold", _between(0.0, 1.0), default=0.95)
    min_p: float = _doc("Drop tokens below this share of the likeliest", _between(0.0, 1.0),
                        default=0.05)
    repeat_penalty: float = _doc("Penalty for repeating recent tokens; 1 disables",
                                 _between(0.5, 5.0), default=1.1)
    seed: int = _doc("Random seed; -1 draws a new one each reply", _at_least(-1), default=-1)


@dataclass(frozen=True)
class RemoteSettings:
    url: str = _doc(
        "Base URL of an OpenAI-compatible server on your network (llama.cpp server, "
        "llama_cpp.server, Ollama), e.g. 'http://192.168.1.20:8080'; used when "
        "engine.backend = 'remote'",
        default="",
    )
    model: str = _doc("Model name to ask the server for (Ollama needs one)", default="")
    api_key: str = _doc("Bearer token, if the server wants one", default="")
    timeout_seconds: float = _doc("Give up on the server after this long", _positive,
                                  default=30.0)
    fallback_to_local: bool = _doc(
        "When the server is down, answer with the local engine instead", default=True
    )


@dataclass(frozen=True)
class AudioSettings:
    input_device: str = _doc(
        "Microphone: '' for the default, part of its name, or its index", default=""
    )
    output_device: str = _doc(
        "Speaker: '' for the default, part of its name, or its index", default=""
    )
    sample_rate_hz: int = _doc(
        "Rate speech is recognized at; the microphone is captured at its native rate and "
        "resampled to this",
        lambda v: None if 8000 <= v <= 48000 else "a rate from 8000 to 48000 (Hz)",
        default=16000,
    )
    block_ms: int = _doc("Audio block length", _between(10, 200), default=30)
    echo_cancel: str = _doc(
        "'auto': when the sound server runs an echo canceller (PulseAudio module-echo-cancel, "
        "PipeWire echo-cancel), record from its source and play into its sink, and keep "
        "listening while Hearth speaks (barge-in by voice); 'off': never",
        _one_of("auto", "off"),
        default="auto",
    )
    barge_in: str = _doc(
        "What interrupts Hearth while it speaks on an echo-cancelled microphone: 'speech' "
        "(the wake word, and speech: Hearth pauses at its first sound and stops once 250 ms "
        "are confirmed while it is silent, else plays on), or 'wake-word' (the wake word only)",
        _one_of("wake-word", "speech"),
        default="speech",
    )
    listen_while_speaking: bool = _doc(
        "Keep the microphone open while Hearth speaks (for barge-in by wake word); off means "
        "half duplex, which avoids hearing itself",
        default=False,
    )
    beeps: bool = _doc("Play a short sound when listening starts and stops", default=True)


@dataclass(frozen=True)
class VadSettings:
    engine: str = _doc(
        "Speech detector: 'auto' (Silero VAD when installed, at 16 kHz), 'silero' or 'webrtc'",
        _one_of("auto", "silero", "webrtc"),
        default="auto",
    )
    speech_threshold: float = _doc("Silero: speech probability that counts as speech",
                                   _between(0.05, 0.95), default=0.5)
    aggressiveness: int = _doc("WebRTC VAD aggressiveness, 0 (least) to 3 (most)",
                               _between(0, 3), default=2)
    energy_threshold: float = _doc(
        "WebRTC VAD: ignore frames quieter than this RMS (0..1) even if it calls them speech",
        _between(0.0, 1.0),
        default=0.005,
    )
    pre_roll_ms: int = _doc("Audio kept from before speech starts", _between(0, 2000),
                            default=300)
    end_silence_ms: int = _doc(
        "Silence that ends an utterance (with Silero, 400 ms cut none of the utterances in "
        "hearth bench live; WebRTC's VAD needed 800)", _between(100, 5000), default=400)
    quick_end_silence_ms: int = _doc(
        "Silence that ends an utterance whose transcript so far already sounds like a whole "
        "question (not trailing off on 'for', 'and', a comma...); 0: always end_silence_ms",
        _between(0, 5000), default=250)
    unfinished_end_silence_ms: int = _doc(
        "Silence that ends an utterance whose transcript so far stops mid-request (on "
        "'Tell me,', 'for', 'and'...): more time to go on; 0: always end_silence_ms",
        _between(0, 5000), default=800)
    max_utterance_seconds: float = _doc("Longest utterance before it is cut",
                                        _between(1.0, 120.0), default=20.0)


@dataclass(frozen=True)
class SttSettings:
    backend: str = _doc(
        "Recognizer: 'auto' (chosen with the machine's tier: Whisper where it fits, "
        "PocketSphinx below that, Vosk for Chinese), 'whisper', 'pocketsphinx' or 'vosk'",
        _one_of("auto", "whisper", "pocketsphinx", "vosk"),
        default="auto",
    )
    model: str = _doc("Recognizer model: 'auto', a catalog id or a model folder", default="auto")
    grammar: tuple[str, ...] = _doc(
        "Command mode: restrict recognition to these words/phrases (Vosk); empty for free speech",
        default=(),
    )
    bias: bool = _doc(
        "Bias recognition toward what Hearth's skills understand (timers, times, numbers, "
        "units); other questions are still heard by the general model",
        default=True,
    )


@dataclass(frozen=True)
class WakeSettings:
    enabled: bool = _doc(
        "Also listen for the wake phrase when [assistant] trigger is not 'wake-word' (with "
        "'wake-word' it is always on)",
        default=False,
    )
    backend: str = _doc(
        "Spotter: 'auto' (microWakeWord for its bundled phrases, PocketSphinx for other "
        "English phrases, Vosk for Chinese), 'micro', 'pocketsphinx' or 'vosk'",
        _one_of("auto", "micro", "pocketsphinx", "vosk"),
        default="auto",
    )
    phrase: str = _doc(
        "The wake phrase: 'okay nabu', 'hey jarvis', 'hey mycroft' or 'alexa' (microWakeWord "
        "models), or any words in the recognizer's dictionary (PocketSphinx / Vosk)",
        lambda v: None if v.strip() else "a non-empty phrase", default="okay nabu")
    threshold: float = _doc(
        "PocketSphinx keyphrase threshold; larger numbers (e.g. 1e-10) mean fewer false alarms, "
        "smaller (1e-40) mean fewer misses",
        lambda v: None if 0 < v < 1 else "a number between 0 and 1 (e.g. 1e-20)",
        default=1e-20,
    )
    probability_cutoff: float = _doc(
        "microWakeWord: a detection needs a smoothed probability above this; 0 means the "
        "model's own cutoff (0.85 for okay nabu)",
        _between(0.0, 0.999),
        default=0.0,
    )


@dataclass(frozen=True)
class TtsSettings:
    backend: str = _doc("Voice engine: 'auto', 'piper' or 'espeak-ng'",
                        _one_of("auto", "piper", "espeak-ng"), default="auto")
    voice: str = _doc(
        "Voice: 'auto', a Piper catalog id or .onnx path, or an espeak-ng voice name like 'en-us'",
        default="auto",
    )
    speaking_rate: float = _doc("Speed: 1.0 normal, 1.5 faster, 0.75 slower",
                                _between(0.25, 4.0), default=1.0)
    enabled: bool = _doc("Speak replies; off gives text-only replies", default=True)


@dataclass(frozen=True)
class AssistantSettings:
    trigger: str = _doc(
        "What starts a turn in headless mode: 'push-to-talk' (a key in the terminal, and the "
        "GPIO button when gpio.button_pin is set), 'button' (the GPIO button only), "
        "'wake-word' or 'hands-free' (speech detected by the VAD)",
        _one_of("push-to-talk", "button", "wake-word", "hands-free"),
        default="push-to-talk",
    )
    push_to_talk_key: str = _doc("Keyboard key for push-to-talk in a terminal", default="space")
    max_history_turns: int = _doc("Earlier turns sent to the model at most",
                                  _between(0, 1000), default=20)


@dataclass(frozen=True)
class HistorySettings:
    enabled: bool = _doc(
        "Keep a local record of conversations (off = nothing you say is stored)", default=True
    )
    path: str = _doc("History database; empty means history.sqlite3 in the data folder",
                     default="")


@dataclass(frozen=True)
class GpioSettings:
    button_pin: int = _doc("BCM pin of the push-to-talk button; -1 for none", _gpio_pin,
                           default=-1)
    pull_up: bool = _doc("Button connects the pin to ground (internal pull-up)", default=True)
    led_pin: int = _doc("BCM pin of a status LED; -1 for none", _gpio_pin, default=-1)


@dataclass(frozen=True)
class GuiSettings:
    kiosk: bool = _doc("Start fullscreen in kiosk mode", default=False)
    kiosk_exit_keys: str = _doc("Key combination that leaves kiosk mode",
                                default="Ctrl+Alt+Q")
    click_to_toggle: bool = _doc(
        "Push-to-talk button toggles on click instead of press-and-hold", default=False
    )
    font_scale: float = _doc("Text size multiplier", _between(0.5, 4.0), default=1.0)


def _worker_addresses(v: tuple[str, ...]) -> str | None:
    import re

    bad = [w for w in v if not re.fullmatch(r"[A-Za-z0-9.\-]+:[0-9]{1,5}", w)]
    return f"'host:port' entries (not {bad[0]!r})" if bad else None


@dataclass(frozen=True)
class ClusterSettings:
    workers: tuple[str, ...] = _doc(
        "llama.cpp RPC workers ('host:port', each running `hearth worker`) that hold the "
        "chat model's layers together; empty runs the model on this machine alone",
        _worker_addresses,
        default=(),
    )
    model: str = _doc(
        "Model run across the workers: 'auto' (engine.model when set, else the largest "
        "installed that fits their pooled memory), a catalog id or a .gguf path",
        _existing_file_or_empty,
        default="auto",
    )
    connect_timeout_seconds: float = _doc("Give up on a worker's handshake after this long",
                                          _between(0.1, 60.0), default=3.0)
    first_token_timeout_seconds: float = _doc(
        "Give up on a reply when its first token takes longer (prompt evaluation)",
        _between(1.0, 3600.0), default=60.0)
    token_timeout_seconds: float = _doc(
        "Give up on a reply when the next token takes longer (a frozen worker)",
        _between(0.5, 600.0), default=5.0)
    retry_seconds: float = _doc(
        "After a worker failed, answer locally and try the workers again after this long",
        _between(1.0, 86400.0), default=60.0)


@dataclass(frozen=True)
class SkillsSettings:
    enabled: bool = _doc(
        "Answer the time, date, timers, alarms, arithmetic and unit conversions exactly, "
        "before the language model", default=True)
    user_dir: str = _doc(
        "Folder of your own skills (sentence templates plus a command or Python function); "
        "empty means 'skills' in the config folder", default="")
    ring_every_seconds: float = _doc("A timer that went off is announced again this often",
                                     _between(2.0, 300.0), default=8.0)
    ring_for_minutes: float = _doc("A timer nobody silences stops ringing after this long",
                                   _between(0.1, 120.0), default=10.0)


@dataclass(frozen=True)
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    stt: SttSettings = field(default_factory=SttSettings)
    wake: WakeSettings = field(default_factory=WakeSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    assistant: AssistantSettings = field(default_factory=AssistantSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    gui: GuiSettings = field(default_factory=GuiSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    skills: SkillsSettings = field(default_factory=SkillsSettings)
    source: str = field(default="(defaults)", compare=False, metadata={"internal": True})
    """The file these settings came from, for messages."""

    @property
    def data_dir(self) -> Path:
        return Path(self.general.data_dir).expanduser() if self.general.data_dir else data_dir()

    @property
    def history_path(self) -> Path:
        return (
            Path(self.history.path).expanduser()
            if self.history.path
            else self.data_dir / "history.sqlite3"
        )


SECTION_DOCS = {
    "general": "Language, logging and where Hearth keeps its data",
    "engine": "The chat model and the engine that runs it",
    "remote": "A llama.cpp / Ollama server on your own network (still offline from the internet)",
    "audio": "Microphone and speaker",
    "vad": "Voice activity detection: when speech starts and ends",
    "stt": "Speech recognition",
    "wake": "Wake word",
    "tts": "Speech synthesis (the voice)",
    "assistant": "How turns start",
    "history": "The local conversation history",
    "gpio": "Raspberry Pi button and LED (headless kiosk)",
    "gui": "The desktop window",
    "cluster": "Other machines of yours lending their memory to the chat model (llama.cpp RPC)",
    "skills": "Exact answers before the language model: time, timers, alarms, arithmetic, units",
}


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    override = os.environ.get("HEARTH_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME))


def default_config_path() -> Path:
    override = os.environ.get("HEARTH_CONFIG")
    return Path(override) if override else config_dir() / "config.toml"


def _sections() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]


def _type_name(tp: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
             list: "a list of strings", tuple: "a list of strings"}
    return names.get(typing.get_origin(tp) or tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check `value` against the field type; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp) or tp
    if origin is bool:
        return isinstance(value, bool), value
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if origin is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if origin is str:
        return isinstance(value, str), value
    if origin in (list, tuple):
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    raise TypeError(f"unsupported settings type {tp}")


def settings_from_dict(data: dict[str, Any], source: str = "(settings)") -> Settings:
    """Validate a parsed TOML document into `Settings`, or raise `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a table of sections")
    sections = {f.name: f for f in _sections()}
    built: dict[str, Any] = {}
    for name, value in data.items():
        if name not in sections:
            raise ConfigError(
                f"{source}: unknown section [{name}]; expected one of: {', '.join(sections)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table (a section), not a value")
        section_cls = typing.get_type_hints(Settings)[name]
        hints = typing.get_type_hints(section_cls)
        fields = {f.name: f for f in dataclasses.fields(section_cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in value.items():
            where = f"{source}: {name}.{key}"
            if key not in fields:
                raise ConfigError(
                    f"{where} is not a known setting; [{name}] takes: {', '.join(fields)}"
                )
            ok, coerced = _coerce(raw, hints[key])
            if not ok:
                raise ConfigError(
                    f"{where} = {raw!r} has the wrong type; expected {_type_name(hints[key])}"
                )
            check = fields[key].metadata.get("check")
            problem = check(coerced) if check else None
            if problem:
                raise ConfigError(f"{where} = {raw!r} is not allowed; expected {problem}")
            kwargs[key] = coerced
        built[name] = section_cls(**kwargs)
    return _check_trigger(Settings(**built, source=source))


def _check_trigger(settings: Settings) -> Settings:
    """One setting, [assistant] trigger, selects how a turn starts: 'wake-word' turns the
    wake word on; a combination that cannot work is a `ConfigError` naming the keys."""
    source, trigger, wake = settings.source, settings.assistant.trigger, settings.wake
    if trigger == "button" and settings.gpio.button_pin < 0:
        raise ConfigError(f"{source}: assistant.trigger = 'button' needs gpio.button_pin "
                          "(the BCM pin the button is on)")
    if trigger == "wake-word":  # (wake.enabled is for the wake word besides another trigger)
        wake = dataclasses.replace(wake, enabled=True)
        settings = dataclasses.replace(settings, wake=wake)
    if not wake.enabled:
        return settings
    from speech.wake_micro import MICRO_WAKE_WORDS, micro_model_for

    phrase = " ".join(wake.phrase.lower().split())
    if wake.backend == "micro" and micro_model_for(phrase) is None:
        raise ConfigError(f"{source}: wake.phrase = {wake.phrase!r} has no microWakeWord model "
                          f"(wake.backend = 'micro'); use one of "
                          f"{', '.join(repr(p) for p in MICRO_WAKE_WORDS)}, or wake.backend = "
                          "'pocketsphinx'")
    if wake.backend == "pocketsphinx" and settings.general.language != "en":
        raise ConfigError(f"{source}: wake.backend = 'pocketsphinx' spots English words only, "
                          f"but general.language = {settings.general.language!r}; use "
                          "wake.backend = 'vosk' or 'auto'")
    return settings


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the config file. A missing default file gives the defaults;
    a missing file named explicitly is an error."""
    explicit = path is not None
    path = path or default_config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such config file (create one with: hearth config init)")
        return Settings(source=f"{path} (not created yet: defaults)")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return settings_from_dict(data, source=str(path))


def replace(settings: Settings, section: str, **changes: Any) -> Settings:
    """A copy of `settings` with some keys of one section changed (validated)."""
    merged = settings_to_dict(settings)
    merged[section] = {**merged[section], **changes}
    return settings_from_dict(merged, source=settings.source)


def settings_to_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        f.name: {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(getattr(settings, f.name)).items()}
        for f in _sections()
    }


def _toml_value(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def render_toml(settings: Settings, commented: bool = True) -> str:
    """The settings as TOML; with `commented`, each key is preceded by its doc."""
    lines: list[str] = []
    if commented:
        lines += [
            "# Hearth configuration. Every key is optional: a missing key takes the default shown.",
            "# Check it with: hearth config show",
            "",
        ]
    for section_field in _sections():
        section = getattr(settings, section_field.name)
        if commented:
            lines.append(f"# {SECTION_DOCS[section_field.name]}")
        lines.append(f"[{section_field.name}]")
        for f in dataclasses.fields(section):
            if commented:
                lines.append(f"# {f.metadata.get('doc', '')}")
            value = getattr(section, f.name)
            value = list(value) if isinstance(value, tuple) else value
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def write_default_config(path: Path, force: bool = False) -> Path:
    """Write a fully commented default config; refuses to overwrite unless `force`."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_toml(Settings()), encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_settings(settings: Settings, path: Path) -> None:
    """Write `settings` to `path` atomically (used by the GUI's settings dialog)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_toml(settings), encoding="utf-8")
    os.replace(tmp, path)

