"""Run a command, stream its output line by line, keep a log, kill the tree on timeout.

The library never prints: each output line goes to an ``on_line`` callback (the CLI
renders it) and, when a log file is given, into that file. A timeout kills the whole
process group (the command runs in its own session), so builds that fork compilers or
QEMU children leave nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

OnLine = Callable[[str], None]


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True)
class ProcResult:
    """What a finished (or killed) command did."""

    argv: tuple[str, ...]
    exit_code: int
    seconds: float
    timed_out: bool
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 1.0) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _stream(
    proc: subprocess.Popen[bytes],
    tail: list[str],
    tail_lines: int,
    log_file: IO[str] | None,
    emit: OnLine,
) -> None:
    """Each output line to the log, to ``emit`` and into the last ``tail_lines``."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        if len(tail) > tail_lines:
            del tail[0]
        if log_file is not None:
            log_file.write(line + "\n")
        emit(line)


def run(
    argv: Sequence[str],
    *,
    on_line: OnLine | None = None,
    log: Path | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    tail_lines: int = 200,
    stdin_data: bytes | None = None,
) -> ProcResult:
    """Run ``argv``; stream merged stdout/stderr; return exit code and the last lines.

    On timeout the process group is killed and ``exit_code`` is -9 with ``timed_out``.
    """
    emit = on_line or _ignore
    tail: list[str] = []
    log_file: IO[str] | None = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_file = log.open("a", encoding="utf-8", errors="replace")
    started = time.monotonic()
    try:
        if log_file is not None:
            log_file.write(f"$ {' '.join(argv)}\n")
            log_file.flush()
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = threading.Event()
        timer: threading.Timer | None = None
        if timeout is not None:

            def expire() -> None:
                timed_out.set()
                _kill_group(proc)

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        if stdin_data is not None and proc.stdin is not None:
            proc.stdin.write(stdin_data)
            proc.stdin.close()
        _stream(proc, tail, tail_lines, log_file, emit)
        code = proc.wait()
        if timer is not None:
            timer.cancel()
        if timed_out.is_set():
            code = -signal.SIGKILL
            message = f"!! timed out after {timeout:.0f}s; killed the process tree"
            tail.append(message)
            if log_file is not None:
                log_file.write(message + "\n")
            emit(message)
        else:
            # Children that outlived the leader (daemons) must not survive the build.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return ProcResult(
            argv=tuple(argv),
            exit_code=code,
            seconds=time.monotonic() - started,
            timed_out=timed_out.is_set(),
            tail=tuple(tail),
        )
    finally:
        if log_file is not None:
            log_file.close()
