"""Running a Java tool whose arguments hold a secret (a SCRAM password): never on a command line, never in a log.

The main class and its arguments go to a 0600 argument file (`java ... @file`, expanded by the java
launcher; others see only `@file` in the process list) that is removed afterwards; the tool's output
is appended to the service log with every secret replaced by `<redacted>`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

REDACTED = "<redacted>"


def _token(arg: str) -> str:
    """One argument, quoted for a java @argfile."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def run(
    jvm: Sequence[str],
    main_and_args: Sequence[str],
    secrets: Sequence[str],
    log: Path,
    workdir: Path,
    timeout_s: float | None = None,
) -> int:
    """jvm: java and its options; main_and_args: the main class, then its arguments. Returns the exit code."""
    fd, argfile = tempfile.mkstemp(prefix=".java-args-", dir=workdir)  # 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write("".join(_token(arg) + "\n" for arg in main_and_args))
        try:
            proc = subprocess.run(
                [*jvm, f"@{argfile}"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
            output, code = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output, code = exc.output or b"", -1
    finally:
        Path(argfile).unlink(missing_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out_log:
        out_log.write(redact(output.decode(errors="replace"), secrets).encode())
    return code
