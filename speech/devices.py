"""The sound card: listing devices, the `Microphone` and the `Speaker` (sounddevice/PortAudio).

Devices are chosen by part of their name (stable across reboots) or by index (not
stable), '' meaning the system default. The microphone captures at the device's
native rate and is resampled with soxr, on the reading thread, to mono at the
recognition rate (`[audio] sample_rate_hz`, 16 kHz by default); its
PortAudio callback only copies blocks into a bounded queue, so a slow consumer
costs dropped blocks (counted and logged), never a stalled audio thread. A device
that vanishes can end the stream or just stop delivering blocks without an error;
`Microphone.read` raises `AudioDeviceError` in both cases (a stall watchdog). A device
that goes away while something else keeps feeding the stream (PulseAudio moving it to
another source) is caught by an optional presence check the watchdog runs.

sounddevice initializes PortAudio when first imported, so it is imported lazily:
environment such as PULSE_SERVER must be set before the first device is opened.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from speech.audio import AudioChunk
from speech.errors import AudioDeviceError
from speech.io import AudioSink, AudioSource
from speech.resample import StreamResampler

log = logging.getLogger(__name__)

NO_INPUT_HINT = (
    "connect a microphone, or pick one with [audio] input_device; "
    "you can still type your questions"
)
_FIRST_BLOCK_SECONDS = 5.0
"""The stall watchdog allows this long for the first block: PulseAudio takes up to ~2 s
to start a capture stream."""
_PRESENCE_CHECK_SECONDS = 1.5
"""How often the watchdog runs the microphone's presence check (it may start a process)."""


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library itself is missing
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install it: sudo apt install libportaudio2"
        ) from None
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    """The device's native rate (Hz)."""
    is_default_input: bool = False
    is_default_output: bool = False

    def describe(self) -> str:
        roles = [r for r, on in (("in", self.max_input_channels), ("out",
                 self.max_output_channels)) if on]
        return f"[{self.index}] {self.name} ({'/'.join(roles)}, {self.default_sample_rate:.0f} Hz)"


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio sees (after a fresh scan)."""
    sd = _sounddevice()
    try:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    devices = []
    for index, dev in enumerate(raw):
        devices.append(
            DeviceInfo(
                index=index,
                name=str(dev["name"]),
                hostapi=str(hostapis[dev["hostapi"]]["name"]),
                max_input_channels=int(dev["max_input_channels"]),
                max_output_channels=int(dev["max_output_channels"]),
                default_sample_rate=float(dev["default_samplerate"]),
                is_default_input=index == default_in,
                is_default_output=index == default_out,
            )
        )
    return devices


def find_device(spec: str | int, kind: str) -> DeviceInfo:
    """The input (`kind="input"`) or output device named by `spec`.

    `spec` is '' for the default, an index, or a case-insensitive part of the name
    (the first match wins). Raises `AudioDeviceError` listing what exists.
    """
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', not {kind!r}")
    devices = list_devices()
    usable = [d for d in devices
              if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0]
    spec_text = str(spec).strip()
    if not usable:
        found = "; ".join(d.describe() for d in devices) or "none at all"
        hint = NO_INPUT_HINT if kind == "input" else "connect speakers or headphones"
        raise AudioDeviceError(f"no audio {kind} device found (devices: {found}); {hint}")
    if not spec_text:
        for d in usable:
            if d.is_default_input if kind == "input" else d.is_default_output:
                return d
        return usable[0]
    if spec_text.isdigit():
        matches = [d for d in usable if d.index == int(spec_text)]
    else:
        matches = [d for d in usable if spec_text.lower() in d.name.lower()]
    if matches:
        return matches[0]
    names = "; ".join(d.describe() for d in usable)
    raise AudioDeviceError(
        f"no {kind} device matches {spec_text!r} (available: {names}); "
        f"set [audio] {kind}_device to part of one of these names"
    )



def _weak_callback(method: Callable[..., Any], abort_when_gone: bool = True) -> Callable[..., Any]:
    """A PortAudio callback that does not keep its owner alive.

    PortAudio calls into the stream's callback from its own thread until the stream is
    closed. If an owner that was never closed is garbage-collected, its stream must be
    closed first (see `_close_when_collected`), or that thread jumps into freed code.
    """
    ref = weakref.WeakMethod(method)

    def callback(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)
        elif abort_when_gone:
            raise _sounddevice().CallbackAbort

    return callback


def _close_stream(stream: Any) -> None:
    try:
        stream.abort()
        stream.close()
    except Exception as exc:  # already closed, or the device vanished
        log.debug("closing a forgotten audio stream: %s", exc)


def _close_when_collected(owner: object, stream: Any) -> weakref.finalize:
    """Close `stream` if `owner` is garbage-collected without being closed."""
    return weakref.finalize(owner, _close_stream, stream)


class Microphone(AudioSource):
    """Live capture delivering 16 kHz (by default) mono `AudioChunk`s of `block_ms`.

    `set_gate(True)` drops everything captured until `set_gate(False)`: half-duplex
    echo gating while Hearth speaks. `overruns` counts blocks lost because the queue
    was full or PortAudio reported an input overflow. `read` raises `AudioDeviceError`
    when the stream ends by itself, when, while running, no block has arrived for
    `stall_seconds` (the device vanished without PortAudio reporting an error), or when
    `device_present` says the device is gone.
    """

    def __init__(
        self,
        device: str | int | DeviceInfo = "",
        *,
        sample_rate: int = 16000,
        capture_rate: int = 0,
        block_ms: int = 30,
        queue_seconds: float = 5.0,
        stall_seconds: float = 2.0,
        device_present: Callable[[], bool] | None = None,
    ) -> None:
        """`device`: a spec for `find_device`, or a device it found. `capture_rate` 0
        means the device's native rate. `stall_seconds`: how long a running stream may
        deliver nothing before `read` reports the device as lost (blocks dropped by the
        gate or a full queue still count as delivered). `device_present`: asked every
        ~1.5 s from the reading thread while running, False meaning the device is gone
        (e.g. `speech.pulse_sources.pinned_source_check`)."""
        self.device = device if isinstance(device, DeviceInfo) else find_device(device,
                                                                                "input")
        self.sample_rate = sample_rate
        self.capture_rate = capture_rate or int(self.device.default_sample_rate)
        self.block_ms = block_ms
        self._blocksize = max(1, self.capture_rate * block_ms // 1000)
        max_blocks = max(4, int(queue_seconds * 1000 / block_ms))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max_blocks)
        self._resampler = StreamResampler(self.capture_rate, sample_rate)
        self._resampler_stale = False
        self._stream: Any = None
        self._gate_closed = False
        self._failed: str | None = None
        self._running = False
        self.stall_seconds = stall_seconds
        self._last_block_at = 0.0
        """When PortAudio last delivered a block (monotonic; set by the callback)."""
        self._first_block = False
        self.device_present = device_present
        self._presence_checked_at = 0.0
        self.overruns = 0
        """Blocks lost: PortAudio input overflows plus blocks dropped on a full queue."""
        self._logged_overruns = 0
        self._last_overrun_log = 0.0

    def start(self) -> None:
        if self._running:
            return
        sd = _sounddevice()
        self._failed = None
        self._first_block = False
        self._last_block_at = self._presence_checked_at = time.monotonic()
        try:
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.capture_rate,
                channels=1,
                dtype="int16",
                blocksize=self._blocksize,
                callback=_weak_callback(self._callback),
                finished_callback=_weak_callback(self._on_finished, abort_when_gone=False),
            )
            self._finalizer = _close_when_collected(self, self._stream)
            self._stream.start()
        except sd.PortAudioError as exc:
            self._stream = None
            raise AudioDeviceError(
                f"cannot open microphone {self.device.name!r} at {self.capture_rate} Hz: {exc}"
            ) from None
        self._running = True
        log.info("microphone %s open at %d Hz", self.device.name, self.capture_rate)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: copy and queue, nothing else (no resampling, no locks)
        self._last_block_at = time.monotonic()
        self._first_block = True
        if status and status.input_overflow:
            self.overruns += 1
        if self._gate_closed:
            return
        try:
            self._queue.put_nowait(indata[:, 0].copy())
        except queue.Full:
            self.overruns += 1

    def _report_overruns(self) -> None:
        """Log lost blocks from the reading thread (never from the callback), at most
        one line per 5 s."""
        now = time.monotonic()
        if self.overruns > self._logged_overruns and now - self._last_overrun_log > 5.0:
            log.warning("microphone dropped %d block(s) of audio so far (input overflow or "
                        "a reader too slow)", self.overruns)
            self._logged_overruns = self.overruns
            self._last_overrun_log = now

    def _on_finished(self) -> None:
        if self._running:
            self._failed = (f"microphone {self.device.name!r} stopped unexpectedly "
                            "(disconnected, or the sound server went away)")

    def _check_stall(self) -> None:
        """Mark the microphone failed when a running stream has gone quiet too long."""
        if not self._running or self._failed:
            return
        limit = self.stall_seconds if self._first_block else max(self.stall_seconds,
                                                                 _FIRST_BLOCK_SECONDS)
        silent = time.monotonic() - self._last_block_at
        if silent > limit:
            self._failed = (f"microphone {self.device.name!r} delivered no audio for "
                            f"{silent:.1f} s (disconnected?)")

    def _check_presence(self) -> None:
        """Mark the microphone failed when its presence check says it is gone; run from
        the reading thread (never the PortAudio callback), at most every ~1.5 s."""
        if self.device_present is None or not self._running or self._failed:
            return
        now = time.monotonic()
        if now - self._presence_checked_at < _PRESENCE_CHECK_SECONDS:
            return
        self._presence_checked_at = now
        if not self.device_present():
            self._failed = f"the microphone {self.device.name!r} disappeared"

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._check_presence()
            if self._failed:
                raise AudioDeviceError(self._failed)
            wait = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            try:
                block = self._queue.get(timeout=wait) if self._running else \
                    self._queue.get_nowait()
            except queue.Empty:
                if not self._running:
                    return None
                self._check_stall()
                if self._failed:
                    raise AudioDeviceError(self._failed) from None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            self._report_overruns()
            if self._resampler_stale:
                self._resampler_stale = False
                self._resampler.reset()
            samples = self._resampler.process(block)
            if len(samples):
                return AudioChunk(samples, self.sample_rate)

    def flush(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        # the reading thread owns the resampler: it resets it before the next block
        self._resampler_stale = True

    def set_gate(self, closed: bool) -> None:
        """Close (True) to drop all captured audio, e.g. while Hearth speaks; open again
        (False) to resume. Closing also drops what was queued but not yet read."""
        self._gate_closed = closed
        if closed:
            self.flush()

    @property
    def gate_closed(self) -> bool:
        return self._gate_closed

    def stop(self) -> None:
        self._running = False
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # a vanished device must not break shutdown
                log.debug("closing microphone: %s", exc)


class Speaker(AudioSink):
    """Playback through one warm PortAudio output stream that stops at once on demand.

    The stream is opened at construction at `sample_rate` (0: the device's native
    rate; chunks of other rates are resampled with soxr) and kept running: a callback
    pulls from a queue of pending samples and plays silence when it is empty, so
    sentences follow each other without reopening the device (the first open can
    take most of a second with PulseAudio). `stop()` (from any thread) drops what is
    pending and aborts the stream, discarding audio in the device buffer; the next
    `play` restarts it.
    """

    def __init__(self, device: str | int = "", *, sample_rate: int = 0,
                 latency_seconds: float = 0.1) -> None:
        """`latency_seconds`: device buffer; small values underrun on busy machines and
        do not make `stop()` faster (it discards the buffer)."""
        self.device = find_device(device, "output")
        native = int(self.device.default_sample_rate)
        self._lock = threading.Lock()
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._offset = 0
        self._queued = 0
        """Frames queued but not yet handed to the device."""
        self._largest_request = 0
        self._generation = 0
        self._idle = threading.Event()
        self._idle.set()
        self._started = threading.Event()
        self._resamplers: dict[int, StreamResampler] = {}
        self._resamplers_stale = False
        self._requested = 0
        self._sounded_at = 0.0
        """When the callback last handed audio of ours (not idle silence) to the device."""
        self._paused = False
        """`pause()` aborted the stream; `play` must not restart it until `resume()`."""
        self.started_at = 0.0
        """When the stream last (re)started (monotonic): an echo canceller in the sound
        server resynchronizes after each start (app/assistant/barge_in.py)."""
        sd = _sounddevice()
        last_error: Exception | None = None
        for rate in dict.fromkeys((sample_rate or native, native)):  # requested, else native
            try:
                self._stream: Any = sd.OutputStream(
                    device=self.device.index, samplerate=rate, channels=1,
                    dtype="int16", latency=latency_seconds,
                    callback=_weak_callback(self._callback),
                )
                self._finalizer = _close_when_collected(self, self._stream)
            except sd.PortAudioError as exc:
                last_error = exc
                continue
            self.sample_rate = rate
            break
        else:
            raise AudioDeviceError(f"cannot open speaker {self.device.name!r}: {last_error}")
        # PulseAudio asks for a burst first, then stalls a while before audio flows in
        # real time: warm means more than the burst has been requested
        self._warm_frames = int(self.sample_rate * (latency_seconds + 0.3))
        try:
            self._start_stream()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot start speaker {self.device.name!r}: {exc}") from None
        # warm up: return once audio flows, so the first sentence is not clipped
        if not self._started.wait(3.0):
            log.warning("speaker %s has not started after 3 s", self.device.name)
        log.info("speaker %s open at %d Hz", self.device.name, self.sample_rate)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            self._largest_request = max(self._largest_request, frames)
            while filled < frames and self._pending:
                head = self._pending[0]
                take = min(frames - filled, len(head) - self._offset)
                out[filled:filled + take] = head[self._offset:self._offset + take]
                filled += take
                self._offset += take
                self._queued -= take
                if self._offset >= len(head):
                    self._pending.popleft()
                    self._offset = 0
            if not self._pending:
                self._idle.set()
        out[filled:] = 0
        if filled:
            self._sounded_at = time.monotonic()
        self._requested += frames
        if self._requested >= self._warm_frames:
            self._started.set()

    def play(self, chunk: AudioChunk, cancel: threading.Event | None = None) -> None:
        """Queue `chunk` and block until all but the last ~2 device requests of it have
        gone to the device, so the next chunk follows without a gap; `drain()` waits
        for the very end."""
        if cancel is not None and cancel.is_set():
            return
        samples = self._converted(chunk.to_mono())
        with self._lock:
            generation = self._generation
            self._pending.append(samples)
            self._queued += len(samples)
            self._idle.clear()
        if not self._stream.active and not self._paused:
            try:
                self._start_stream()  # after a stop()
            except Exception as exc:
                raise AudioDeviceError(f"speaker {self.device.name!r} failed: {exc}") from None
        # poll, because a caller's cancel Event cannot be waited on together with ours
        while True:
            with self._lock:
                low_water = 2 * self._largest_request
                if self._queued <= low_water or generation != self._generation:
                    return  # nearly played, or stop() was called from another thread
            if cancel is not None and cancel.is_set():
                self.stop()
                return
            time.sleep(0.005)

    def _start_stream(self) -> None:
        self._stream.start()
        self.started_at = time.monotonic()

    def start_promptly(self) -> None:
        """Call before the first chunk of a reply. A warm stream that has only played
        silence for longer than its buffer holds that much silence ahead of anything new;
        restarted, it is asked for a burst at once, so the next `play` reaches the sound
        server in a few ms instead of `latency_seconds` (measured through PulseAudio:
        ~2-11 ms against ~127 ms with a 0.1 s buffer)."""
        with self._lock:
            if self._pending:
                return
        silent = time.monotonic() - self._sounded_at > float(self._stream.latency) + 0.05
        if silent and self._stream.active:
            try:
                self._stream.abort()  # `play` starts it again
            except Exception as exc:
                log.debug("restarting speaker: %s", exc)

    def _converted(self, chunk: AudioChunk) -> np.ndarray:
        """`chunk`'s samples at the stream's rate. A stateful resampler per input rate
        keeps 0.25 s synthesizer slices from clicking at their edges."""
        if self._resamplers_stale:
            self._resamplers_stale = False
            self._resamplers.clear()
        if chunk.sample_rate == self.sample_rate:
            return chunk.samples
        resampler = self._resamplers.get(chunk.sample_rate)
        if resampler is None:
            resampler = StreamResampler(chunk.sample_rate, self.sample_rate)
            self._resamplers[chunk.sample_rate] = resampler
        return resampler.process(chunk.samples)

    def drain(self, cancel: threading.Event | None = None) -> None:
        """Block until everything queued has been heard (or `cancel`/`stop()`)."""
        tails = [r.process(np.zeros(0, dtype=np.int16), last=True)
                 for r in self._resamplers.values()]
        self._resamplers.clear()
        generation = self._generation
        with self._lock:
            for tail in tails:
                if len(tail):
                    self._pending.append(tail)
                    self._queued += len(tail)
                    self._idle.clear()
        while not self._idle.wait(0.01):
            if cancel is not None and cancel.is_set():
                self.stop()
                return
            if generation != self._generation:
                return
        if generation == self._generation:
            time.sleep(float(self._stream.latency))  # the device buffer still holds the tail

    def pause(self) -> None:
        """Silence the speaker at once but keep what is queued, for `resume()` (what the
        device buffer held, about 0.1 s, is lost); `stop()` drops everything. Barge-in
        pauses at the first sign of a person talking, before it is sure."""
        self._paused = True
        if self._stream.active:
            try:
                self._stream.abort()
            except Exception as exc:
                log.debug("pausing speaker: %s", exc)

    def resume(self) -> None:
        """Play on after `pause()`."""
        if not self._paused:
            return
        self._paused = False
        if not self._stream.active:
            try:
                self._start_stream()
            except Exception as exc:
                raise AudioDeviceError(f"speaker {self.device.name!r} failed: {exc}") from None

    def stop(self) -> None:
        self._paused = False
        with self._lock:
            self._pending.clear()
            self._offset = 0
            self._queued = 0
            self._generation += 1
            self._idle.set()
        self._resamplers_stale = True  # the playing thread drops them before its next chunk
        if self._stream.active:
            try:
                self._stream.abort()  # drops what the device buffer still holds
            except Exception as exc:
                log.debug("aborting speaker: %s", exc)

    def close(self) -> None:
        self.stop()
        try:
            self._stream.close()
        except Exception as exc:  # a vanished device must not break shutdown
            log.debug("closing speaker: %s", exc)
