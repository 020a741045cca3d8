"""Run a command, stream its output line by line, keep a log, kill the tree on timeout.

The library never prints: each output line goes to an ``on_line`` callback (the CLI
renders it) and, when a log file is given, into that file. A timeout kills the whole
process group (the command runs in its own session), so builds that fork compilers or
QEMU children leave nothing behind.

Bounds, so a careless or hostile build leaves the machine usable: a log keeps the first
and the last :data:`LOG_KEEP` bytes of a command's output (the middle is cut, and says
so); output past :data:`OUTPUT_LIMIT` bytes is a flood and kills the process tree; a
line longer than :data:`LINE_LIMIT` bytes is split. Every environment given is passed
through :func:`scrub` first: cloud and CI credentials never reach a command, whatever
put them into its environment (each backend's environment is an allow-list already;
this is the backstop behind them).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

OnLine = Callable[[str], None]

LOG_KEEP = 8 << 20  # bytes of a command's output kept at the head of its log, and at the tail
OUTPUT_LIMIT = 2 << 30  # bytes of output that make a flood: the command is killed
LINE_LIMIT = 64 << 10  # longer lines are split (a line without end never fills memory)
FLOODED = "the build flooded its log (output past the limit); stopped, head and tail kept"
#: A check a command is stopped by, asked four times a second while it runs (e.g. the disk
#: watchdog of :mod:`refinery.builder.isolation`): a reason stops it, None lets it run.
#: Set per build (a context variable: each build's thread has its own).
STOP: contextvars.ContextVar[Callable[[], str | None] | None] = contextvars.ContextVar(
    "refinery_stop", default=None
)
STOP_POLL = 0.25

#: Variables no command may see: credentials by their names (tokens, secrets, passwords,
#: keys; a CI's own as well, e.g. its runtime and OIDC tokens) and cloud providers' ones.
_SECRET = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_KEY|PRIVATE_KEY|(^|_)AUTH(_|$)|COOKIE|"
    r"^(AWS|AZURE|GCP|GOOGLE_APPLICATION|DOCKER_AUTH|NPM_CONFIG__AUTH)",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    """Whether the variable ``name`` is a credential a build must never see."""
    return bool(_SECRET.search(name))


def scrub(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables :func:`is_secret` names."""
    return {k: v for k, v in env.items() if not is_secret(k)}


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
    flooded: bool = False  # killed for writing more than OUTPUT_LIMIT bytes
    stopped: str = ""  # killed by the build's STOP check, and why

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.flooded and not self.stopped


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


@dataclass
class _BoundedLog:
    """A command's lines into its log: the first ``keep`` bytes as they come, the last
    ``keep`` bytes held back and written at :meth:`close` after a note of the cut."""

    file: IO[str] | None
    keep: int
    head: int = 0
    tail: deque[str] = field(default_factory=deque)
    tail_bytes: int = 0
    cut_lines: int = 0
    cut_bytes: int = 0

    def write(self, line: str) -> None:
        if self.file is None:
            return
        size = len(line) + 1
        if self.head + size <= self.keep and not self.tail:
            self.file.write(line + "\n")
            self.head += size
            return
        self.tail.append(line)
        self.tail_bytes += size
        while self.tail_bytes > self.keep:
            old = len(self.tail.popleft()) + 1
            self.tail_bytes -= old
            self.cut_lines += 1
            self.cut_bytes += old

    def close(self) -> None:
        if self.file is None:
            return
        if self.cut_lines:
            self.file.write(
                f"!! log cut: {self.cut_lines} lines ({self.cut_bytes} bytes) of output "
                "left out here; its head and tail are kept\n"
            )
        for line in self.tail:
            self.file.write(line + "\n")
        self.tail.clear()


def _stream(
    proc: subprocess.Popen[bytes],
    tail: list[str],
    tail_lines: int,
    log: _BoundedLog,
    emit: OnLine,
) -> bool:
    """Each output line to the log, to ``emit`` and into the last ``tail_lines``.
    Returns whether the output passed :data:`OUTPUT_LIMIT` (the tree is killed then)."""
    assert proc.stdout is not None
    total = 0
    while raw := proc.stdout.readline(LINE_LIMIT):
        total += len(raw)
        if total > OUTPUT_LIMIT:
            _kill_group(proc, grace=0.0)
            return True
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        if len(tail) > tail_lines:
            del tail[0]
        log.write(line)
        emit(line)
    return False


@dataclass
class _Watcher:
    """A thread asking the build's :data:`STOP` check while a command runs; a reason
    kills the process tree (and lands in ``stopped``)."""

    proc: subprocess.Popen[bytes]
    check: Callable[[], str | None]
    stopped: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> None:
        while not self.done.is_set() and self.proc.poll() is None:
            reason = self.check()
            if reason:
                self.stopped.append(reason)
                _kill_group(self.proc, grace=0.0)
                return
            self.done.wait(STOP_POLL)

    def start(self) -> _Watcher:
        threading.Thread(target=self.poll, daemon=True).start()
        return self

    def stop(self) -> str:
        self.done.set()
        return self.stopped[0] if self.stopped else ""


def _finish(
    tail: list[str],
    log: _BoundedLog,
    emit: OnLine,
    *,
    timed_out: float | None,
    flooded: bool,
    stopped: str = "",
) -> None:
    """The closing line of a command that was stopped (timeout, flood or its check)."""
    log.close()
    if timed_out is not None:
        message = f"!! timed out after {timed_out:.0f}s; killed the process tree"
    elif flooded:
        message = f"!! output passed {OUTPUT_LIMIT} bytes (a flood); killed the process tree"
    elif stopped:
        message = f"!! {stopped}; killed the process tree"
    else:
        return
    tail.append(message)
    if log.file is not None:
        log.file.write(message + "\n")
    emit(message)


def _timer(
    proc: subprocess.Popen[bytes], timeout: float | None, timed_out: threading.Event
) -> threading.Timer | None:
    """A timer killing ``proc``'s tree after ``timeout`` seconds (and setting ``timed_out``)."""
    if timeout is None:
        return None

    def expire() -> None:
        timed_out.set()
        _kill_group(proc)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


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

    On timeout (or a flood of output) the process group is killed and ``exit_code`` is
    -9 with ``timed_out`` (``flooded``). ``env`` passes through :func:`scrub` first.
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
            env=scrub(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        timed_out = threading.Event()
        timer = _timer(proc, timeout, timed_out)
        check = STOP.get()
        watcher = _Watcher(proc, check).start() if check is not None else None
        if stdin_data is not None and proc.stdin is not None:
            proc.stdin.write(stdin_data)
            proc.stdin.close()
        bounded = _BoundedLog(log_file, LOG_KEEP)
        flooded = _stream(proc, tail, tail_lines, bounded, emit)
        code = proc.wait()
        if timer is not None:
            timer.cancel()
        why = watcher.stop() if watcher is not None else ""
        why = "" if timed_out.is_set() or flooded else why
        _finish(
            tail,
            bounded,
            emit,
            timed_out=timeout if timed_out.is_set() else None,
            flooded=flooded,
            stopped=why,
        )
        if timed_out.is_set() or flooded or why:
            code = -signal.SIGKILL
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
            flooded=flooded and not timed_out.is_set(),
            stopped=why,
        )
    finally:
        if log_file is not None:
            log_file.close()
