"""llama.cpp's RPC backend: one model's layers on several machines' memory.

The workers are `ggml-rpc-server` processes (started by `hearth worker`), built from the
same llama.cpp source as llama-cpp-python: the handshake refuses a protocol mismatch.
This module

- probes a worker with a timed handshake in pure Python (`probe_worker`), so that a
  worker that is down, frozen or refusing this machine is found before llama.cpp
  touches it: llama.cpp aborts the whole process on any RPC failure and has no timeout;
- registers workers as llama.cpp devices (`register_workers`), through the functions
  llama-cpp-python 0.3.10+ no longer wraps (`Llama(rpc_servers=...)` is gone);
- loads a `LlamaCppEngine` whose layers all live on the workers, split in proportion to
  the memory Hearth knows each has (`load_rpc_engine`).

Registration is per process and permanent, and a worker failure aborts the process:
`load_rpc_engine` is meant to run in a child process (engine/subprocess_engine.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.base import EngineConfig
from engine.errors import EngineError

# ggml-rpc protocol of the llama.cpp vendored by llama-cpp-python 0.3.36 (ggml-rpc.h).
RPC_PROTO_MAJOR = 7
RPC_PROTO_MINOR = 0
_CMD_GET_DEVICE_MEMORY = 11
_CMD_HELLO = 14
_CMD_DEVICE_COUNT = 15
_CONN_CAPS_SIZE = 24

HEARTH_STATUS_REQUEST = b"HEARTH-STATUS\n"
"""What `hearth worker` answers itself (never forwarded): its usable memory as JSON.
It starts with a byte no RPC command has, so it cannot be mistaken for one."""
HEARTH_REFUSED = b"HEARTH-REFUSED"
"""First bytes a `hearth worker` sends to a peer outside its allow-list, then closes."""
HEARTH_UNAVAILABLE = b"HEARTH-UNAVAILABLE"
"""What a `hearth worker` sends, then closes, while its ggml-rpc-server is down."""

DEFAULT_PORT = 50052


class ClusterError(EngineError):
    """A worker (or the engine that uses them) failed; the message names which."""


class WorkerUnreachableError(ClusterError):
    """A worker refused, did not answer in time, or speaks another protocol version."""


@dataclass(frozen=True)
class Endpoint:
    """A worker's address, "host:port"."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port (e.g. 192.168.1.21:{DEFAULT_PORT})")
        if ":" in host:
            raise ValueError(f"{text!r}: llama.cpp's RPC workers take IPv4 addresses or names")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class WorkerStatus:
    """What a probe learned about one worker."""

    endpoint: Endpoint
    protocol: str = ""
    """The RPC protocol version the worker speaks, e.g. "7.0.0"; "" when not asked (busy)."""
    devices: int = 0
    total_bytes: int = 0
    """Memory the worker's devices report (a CPU worker reports the machine's RAM)."""
    usable_bytes: int = 0
    """What the worker may use: a `hearth worker` counts its cgroup limit; else total."""
    round_trip_ms: float = 0.0
    """The handshake's round trip (HELLO request to answer)."""
    hearth: bool = False
    """Answered by `hearth worker` (memory from Hearth), not a bare ggml-rpc-server."""
    busy: bool = False
    """Another client (e.g. the running Hearth) holds the worker; it serves one at a time."""


def _raise_if_hearth_notice(data: bytes) -> None:
    """A `hearth worker` that will not forward says why in its first bytes."""
    if data.startswith(HEARTH_REFUSED):
        raise WorkerUnreachableError("refused: this machine is not in its --allow list")
    if data.startswith(HEARTH_UNAVAILABLE):
        raise WorkerUnreachableError("is up, but its ggml-rpc-server is not (restarting)")


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            _raise_if_hearth_notice(bytes(data))
            raise WorkerUnreachableError("closed the connection during the handshake")
        data += chunk
    return bytes(data)


def _command(sock: socket.socket, cmd: int, payload: bytes, reply_size: int) -> bytes:
    sock.sendall(struct.pack("<BQ", cmd, len(payload)) + payload)
    head = _recv_exact(sock, 8)
    if head.startswith(b"HEARTH-"):
        rest = bytearray(head)
        while chunk := sock.recv(256):
            rest += chunk
        _raise_if_hearth_notice(bytes(rest))
    (size,) = struct.unpack("<Q", head)
    if size != reply_size:
        raise WorkerUnreachableError(f"answered command {cmd} with {size} bytes, not "
                                     f"{reply_size}: not a ggml-rpc-server of this version")
    return _recv_exact(sock, size)


@contextlib.contextmanager
def _connect(endpoint: Endpoint, timeout_seconds: float,
             source_address: str | None) -> Iterator[socket.socket]:
    try:
        sock = socket.create_connection(
            (endpoint.host, endpoint.port), timeout=timeout_seconds,
            source_address=(source_address, 0) if source_address else None)
    except TimeoutError:
        raise WorkerUnreachableError(f"did not accept a connection within "
                                     f"{timeout_seconds:g} s") from None
    except OSError as exc:
        raise WorkerUnreachableError(f"cannot be reached: {exc.strerror or exc}") from None
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            yield sock
        except TimeoutError:
            raise WorkerUnreachableError(f"did not answer within {timeout_seconds:g} s "
                                         "(frozen, or busy with another client)") from None
        except OSError as exc:
            raise WorkerUnreachableError(f"failed during the handshake: "
                                         f"{exc.strerror or exc}") from None


def _hearth_status(endpoint: Endpoint, timeout_seconds: float,
                   source_address: str | None) -> dict[str, int] | None:
    """The JSON a `hearth worker` answers to HEARTH_STATUS_REQUEST; None from a bare server."""
    with _connect(endpoint, timeout_seconds, source_address) as sock:
        data = bytearray()
        try:
            sock.sendall(HEARTH_STATUS_REQUEST)
            while not data.endswith(b"\n") and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionError:
            return None  # a bare ggml-rpc-server drops a connection that is not RPC
    _raise_if_hearth_notice(bytes(data))
    try:
        status = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def probe_worker(endpoint: Endpoint | str, timeout_seconds: float = 3.0, *,
                 source_address: str | None = None) -> WorkerStatus:
    """Handshake with a worker and ask its memory, each step within `timeout_seconds`.

    Raises `WorkerUnreachableError` (message starts with "worker HOST:PORT") when the
    worker is down, frozen, refuses this machine or speaks another protocol version.
    """
    ep = endpoint if isinstance(endpoint, Endpoint) else Endpoint.parse(endpoint)
    try:
        status = _hearth_status(ep, timeout_seconds, source_address)
        if status and status.get("clients", 0) > 0:
            # The server handles one client at a time; a HELLO would wait for it.
            return WorkerStatus(ep, total_bytes=int(status.get("total_bytes", 0)),
                                usable_bytes=int(status.get("usable_bytes", 0)),
                                hearth=True, busy=True)
        with _connect(ep, timeout_seconds, source_address) as sock:
            started = time.perf_counter()
            hello = _command(sock, _CMD_HELLO, bytes(_CONN_CAPS_SIZE), 4 + _CONN_CAPS_SIZE)
            round_trip_ms = (time.perf_counter() - started) * 1000.0
            major, minor, patch = hello[0], hello[1], hello[2]
            if major != RPC_PROTO_MAJOR or minor > RPC_PROTO_MINOR:
                raise WorkerUnreachableError(
                    f"speaks RPC protocol {major}.{minor}.{patch}, this Hearth "
                    f"{RPC_PROTO_MAJOR}.{RPC_PROTO_MINOR}: build both from the same "
                    "llama-cpp-python version (make rpc-server)")
            (devices,) = struct.unpack("<I", _command(sock, _CMD_DEVICE_COUNT, b"", 4))
            total = 0
            for device in range(devices):
                _free, dev_total = struct.unpack("<QQ", _command(
                    sock, _CMD_GET_DEVICE_MEMORY, struct.pack("<I", device), 16))
                total += dev_total
    except WorkerUnreachableError as exc:
        raise WorkerUnreachableError(f"worker {ep} {exc}") from None
    usable = int(status["usable_bytes"]) if status and "usable_bytes" in status else total
    return WorkerStatus(ep, protocol=f"{major}.{minor}.{patch}", devices=devices,
                        total_bytes=total, usable_bytes=min(usable, total) or total,
                        round_trip_ms=round_trip_ms, hearth=status is not None)


def tensor_split(usable_bytes: Sequence[int]) -> list[float]:
    """Each worker's share of the layers, in proportion to the memory it may use
    (a CPU worker would report the whole machine's RAM as free)."""
    total = sum(usable_bytes)
    if total <= 0:
        return [1.0 / len(usable_bytes)] * len(usable_bytes)
    return [b / total for b in usable_bytes]


def rpc_supported() -> bool:
    """True when the installed llama-cpp-python was built with GGML_RPC."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_rpc())


def register_workers(endpoints: Sequence[Endpoint]) -> None:
    """Add each worker as a llama.cpp device of this process (permanent; llama.cpp
    connects here and aborts the process if the worker is gone: probe first)."""
    import llama_cpp

    if not llama_cpp.llama_supports_rpc():
        raise ClusterError("this llama-cpp-python was built without RPC; rebuild it with "
                           "CMAKE_ARGS=-DGGML_RPC=ON (make run does)")
    lib = llama_cpp.llama_cpp._lib
    lib.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    lib.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ggml_backend_register.restype = None
    lib.ggml_backend_register.argtypes = [ctypes.c_void_p]
    rpc = lib.ggml_backend_reg_by_name(b"RPC")
    address = rpc and lib.ggml_backend_reg_get_proc_address(rpc, b"ggml_backend_rpc_add_server")
    if not address:
        raise ClusterError("llama.cpp's RPC backend has no ggml_backend_rpc_add_server; "
                           "this Hearth needs llama-cpp-python 0.3.36")
    add_server = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(address)
    for endpoint in endpoints:
        reg = add_server(str(endpoint).encode())
        if not reg:
            raise WorkerUnreachableError(f"worker {endpoint} reports no devices")
        lib.ggml_backend_register(reg)


@contextlib.contextmanager
def _offloading_llama(split: Sequence[float]) -> Iterator[None]:
    """While a LlamaCppEngine is constructed, its `llama_cpp.Llama` puts every layer on
    the registered workers (n_gpu_layers=-1; the default 0 offloads nothing)."""
    import llama_cpp

    original = llama_cpp.Llama

    class OffloadingLlama(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.update(n_gpu_layers=-1, tensor_split=list(split))
            super().__init__(*args, **kwargs)

    llama_cpp.Llama = OffloadingLlama
    try:
        yield
    finally:
        llama_cpp.Llama = original


def load_rpc_engine(config: EngineConfig, workers: Sequence[str],
                    split: Sequence[float] = (), connect_timeout_seconds: float = 3.0
                    ) -> object:
    """A LlamaCppEngine for `config` with its layers on `workers` ("host:port").

    Every worker is probed first, so one that is down gives an error instead of
    llama.cpp's abort. Run it in a process of its own (see module docstring).
    """
    from engine.llama_cpp import LlamaCppEngine

    endpoints = [Endpoint.parse(w) for w in workers]
    statuses = [probe_worker(ep, connect_timeout_seconds) for ep in endpoints]
    for status in statuses:
        if status.busy:
            raise WorkerUnreachableError(f"worker {status.endpoint} is in use by another "
                                         "client (it serves one at a time)")
    register_workers(endpoints)
    shares = list(split) or tensor_split([s.usable_bytes for s in statuses])
    with _offloading_llama(shares):
        return LlamaCppEngine(config)
