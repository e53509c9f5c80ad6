"""Finding the sound server's echo canceller from `pactl` output (PulseAudio, PipeWire)."""

from __future__ import annotations

from speech.echo import EchoCanceller, parse_echo_canceller, use_echo_canceller

PULSE_INFO = "Server String: unix:/run/user/1000/pulse/native\nServer Name: pulseaudio\n"
PIPEWIRE_INFO = "Server Name: PulseAudio (on PipeWire 1.0.5)\n"


def test_pulseaudio_module_echo_cancel_is_found_by_its_driver() -> None:
    sources = ("0\talsa_input.usb-mic\tmodule-alsa-card.c\ts16le 1ch 48000Hz\tRUNNING\n"
               "2\tec_source\tmodule-echo-cancel.c\tfloat32le 1ch 16000Hz\tIDLE\n"
               "3\tec_sink.monitor\tmodule-echo-cancel.c\tfloat32le 1ch 16000Hz\tIDLE\n")
    sinks = ("0\talsa_output.hdmi\tmodule-alsa-card.c\ts16le 2ch 48000Hz\tIDLE\n"
             "2\tec_sink\tmodule-echo-cancel.c\tfloat32le 1ch 16000Hz\tIDLE\n")
    assert parse_echo_canceller(PULSE_INFO, sources, sinks) == \
        EchoCanceller("pulseaudio", "ec_source", "ec_sink")


def test_pipewire_echo_cancel_nodes_are_found_by_name() -> None:
    sources = ("48\talsa_input.pci\tPipeWire\ts32le 2ch 48000Hz\tSUSPENDED\n"
               "51\techo-cancel-sink.monitor\tPipeWire\tfloat32le 1ch 48000Hz\tIDLE\n"
               "52\techo-cancel-source\tPipeWire\tfloat32le 1ch 48000Hz\tIDLE\n")
    sinks = "50\techo-cancel-sink\tPipeWire\tfloat32le 1ch 48000Hz\tIDLE\n"
    found = parse_echo_canceller(PIPEWIRE_INFO, sources, sinks)
    assert found == EchoCanceller("pipewire", "echo-cancel-source", "echo-cancel-sink")
    assert "libpipewire-module-echo-cancel" in found.describe()


def test_no_canceller_without_both_a_source_and_a_sink() -> None:
    sources = "0\thearth_mic.monitor\tmodule-null-sink.c\ts16le 1ch 48000Hz\tRUNNING\n"
    assert parse_echo_canceller(PULSE_INFO, sources, "") is None
    assert parse_echo_canceller(PULSE_INFO, "", "") is None


def test_using_it_steers_pulseaudio_clients() -> None:
    environ: dict[str, str] = {"PULSE_SOURCE": "hearth_mic.monitor"}
    use_echo_canceller(EchoCanceller("pulseaudio", "ec_source", "ec_sink"), environ)
    assert environ == {"PULSE_SOURCE": "ec_source", "PULSE_SINK": "ec_sink"}
