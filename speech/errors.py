"""Typed errors raised by the speech library, each with one sentence for a person."""


class SpeechError(Exception):
    """Base class of every error raised by `speech`."""


class AudioDeviceError(SpeechError):
    """No usable input/output device, or the device failed or disappeared."""


class AudioFormatError(SpeechError):
    """Audio of the wrong sample rate, width or channel count, or an unreadable WAV file."""


class SpeechModelError(SpeechError):
    """A recognizer, wake-word or voice model is missing or unreadable."""


class SpeechBackendUnavailableError(SpeechError):
    """A speech backend's optional dependency is not installed (the message names the extra)."""
