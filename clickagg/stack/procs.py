"""Background processes the stack owns: started detached, tracked by pid file, stopped only if ours."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces ("" if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def owned_pid(pid_file: Path, tag: str) -> int | None:
    """The pid in pid_file if that process is alive and carries our tag (so a recycled pid is never ours)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = cmdline(pid)
    if not cmd or tag not in cmd:
        return None
    return None if _state(pid) in (None, "Z", "X") else pid


def spawn(cmd: list[str], pid_file: Path, log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start cmd detached from our session so it outlives this command; stdout/stderr go to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True until the process is really gone: an exiting JVM still holds its ports."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    return _state(pid) not in (None, "Z", "X")


def stop(pid: int, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process (graceful first); SIGKILL after timeout so `down` never leaves it behind."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.1)
