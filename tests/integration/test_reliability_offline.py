"""The offline promise, checked from outside: `strace -f` records every connect() and
sendto() of a full text turn and a full voice turn (file mode) of the real `hearth`
command, and none may leave the machine (only loopback and AF_UNIX).

A control run proves the strace parser does see an outside connection attempt, so an
empty result means "nothing tried", not "nothing parsed".
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEARTH = [sys.executable, "-m", "app.cli"]
TRACED = "connect,sendto,sendmsg"

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

_FAMILY = re.compile(r"sa_family=(AF_INET6?)")
_IPV4 = re.compile(r'inet_addr\("([^"]+)"\)')
_IPV6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')


def outside_connections(strace_log: str) -> list[str]:
    """strace lines whose AF_INET/AF_INET6 address is not loopback (or unspecified)."""
    found = []
    for line in strace_log.splitlines():
        family = _FAMILY.search(line)
        if family is None:
            continue  # AF_UNIX, AF_NETLINK, or a call without an address
        match = (_IPV4 if family.group(1) == "AF_INET" else _IPV6).search(line)
        if match is None:
            found.append(line)  # an internet address we cannot read counts as outside
            continue
        ip = ipaddress.ip_address(match.group(1))
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not (ip.is_loopback or ip.is_unspecified):
            found.append(line)
    return found


def run_traced(args: list[str], tmp_path: Path, timeout: float = 240) -> tuple[
        subprocess.CompletedProcess[str], str]:
    log = tmp_path / f"strace-{len(list(tmp_path.glob('strace-*')))}.log"
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-o", str(log), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc, log.read_text(errors="replace")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose history goes to the test's folder (nothing else changed)."""
    path = tmp_path / "config.toml"
    path.write_text(f'[history]\npath = "{tmp_path / "history.sqlite3"}"\n', encoding="utf-8")
    return path


def test_parser_sees_an_outside_connection_attempt(tmp_path: Path) -> None:
    code = ("import socket\n"
            "s = socket.socket(); s.settimeout(0.2)\n"
            "s.connect_ex(('192.0.2.1', 9))\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "u.sendto(b'x', ('127.0.0.1', 9))\n")
    _, log = run_traced([sys.executable, "-c", code], tmp_path)
    outside = outside_connections(log)
    assert len(outside) == 1 and "192.0.2.1" in outside[0]
    assert "127.0.0.1" in log


def test_text_turn_makes_no_outside_connection(tmp_path: Path, config: Path) -> None:
    proc, log = run_traced(
        [*HEARTH, "--config", str(config), "ask", "--text", "What is the capital of France?",
         "--max-tokens", "8", "--temperature", "0", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["reply"].strip()
    assert outside_connections(log) == []


def test_voice_turn_in_file_mode_makes_no_outside_connection(
    tmp_path: Path, config: Path
) -> None:
    question = tmp_path / "question.wav"
    answer = tmp_path / "answer.wav"
    subprocess.run(["espeak-ng", "-w", str(question), "What is the capital of France?"],
                   check=True, timeout=60)
    proc, log = run_traced(
        [*HEARTH, "--config", str(config), "ask", "--wav", str(question), "--out", str(answer),
         "--max-tokens", "8", "--temperature", "0", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["transcript"].strip() and reply["reply"].strip()
    assert answer.stat().st_size > 44  # a WAV with audio in it: Piper really ran
    assert outside_connections(log) == []


def test_whisper_voice_turn_makes_no_outside_connection(tmp_path: Path, config: Path) -> None:
    """faster-whisper is given the store's folder and HF_HUB_OFFLINE: no hub lookup, no
    download, at load or at recognition."""
    question = tmp_path / "question.wav"
    config.write_text(config.read_text() + '[stt]\nbackend = "whisper"\n', encoding="utf-8")
    subprocess.run(["espeak-ng", "-w", str(question), "What is the capital of France?"],
                   check=True, timeout=60)
    proc, log = run_traced(
        [*HEARTH, "--config", str(config), "ask", "--wav", str(question),
         "--max-tokens", "8", "--temperature", "0", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["recognizer"] == "whisper"
    assert "capital of france" in reply["transcript"].lower()
    assert outside_connections(log) == []
