"""What a build may reach and how much it may fill (issue 14): a build runs arbitrary
code from an sdist.

* **Network.** As fromager does, the sdist and the build requirements are fetched first
  (the fetch and ``requires`` phases, with the network); the PEP 517 build itself then
  runs in a network namespace of its own with only loopback (``unshare --net``). A
  package whose build must download gets the network back through its catalog entry or
  a hint's fix (``network: {allow: true, reason: "..."}``); a build that tried and
  failed gets a reason saying so (:func:`network_reason`). Every attempt records how it
  ran (:func:`network_mode`).
* **Disk.** A watchdog (:class:`DiskWatch`) bounds what a build's folders hold (its work
  folder, its session's layer and temp) and the free space left on their filesystem;
  exceeding either stops the running command (through :data:`refinery.builder.proc.STOP`),
  and the step records ``disk quota exceeded: ...`` and empties the work folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from refinery.builder import proc

# --- network ---------------------------------------------------------------------------
#: Shell line run first in a build's new network namespace: loopback up, nothing else.
LOOPBACK_UP = "ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null || true"
#: How a package gets the network back (its catalog entry's or a hint's fix).
ALLOW_HOW = 'network: {allow: true, reason: "..."} in its catalog entry\'s fix'
ISOLATED = "isolated"

#: What a build that reached for the network prints (curl, git, pip/urllib3, Python's
#: socket, cargo/rustc, Go): none of it is a compiler's message.
_NETWORK_FAILURE = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known|"
    r"No address associated with hostname|Network is unreachable|\[Errno (101|111|-2|-3)\]|"
    r"getaddrinfo failed|failed to lookup address information|Failed to establish a new "
    r"connection|Connection refused|dial tcp|Could not connect to",
    re.IGNORECASE,
)


@runtime_checkable
class Isolating(Protocol):
    """A session that can run its next commands without a network (loopback only);
    ``isolate_network`` answers why it could not ("" when it did)."""

    def isolate_network(self) -> str: ...


def offline_script(script: str) -> str:
    """``script`` (run by ``unshare --net``) with loopback brought up first."""
    return f"{LOOPBACK_UP}\n{script}"


def unshare_net(offline: bool) -> list[str]:
    """The ``unshare`` flag of a new, empty network namespace (none when online)."""
    return ["--net"] if offline else []


def network_mode(*, isolate: bool, allowed: str, backend: str, capable: bool) -> str:
    """How an attempt's build step ran, for its record: ``isolated``, ``allowed: REASON``
    (a package's fix), ``not isolated: ...`` (turned off, or the backend cannot yet)."""
    if not isolate:
        return "not isolated: network isolation is turned off (--network-isolation)"
    if allowed:
        return f"allowed: {allowed}"
    if not capable:
        return f"not isolated: the {backend} backend cannot take a build's network"
    return ISOLATED


def network_failure(lines: Sequence[str]) -> str | None:
    """The first line of an isolated build's output that shows it reached for the
    network (None: none)."""
    for line in lines:
        if _NETWORK_FAILURE.search(line):
            return line.strip()
    return None


def network_reason(line: str) -> str:
    """The failure reason of an isolated build that tried the network."""
    return (
        f"the build tried to reach the network: {line[:300]} (network isolation; allow it "
        f"per package with {ALLOW_HOW})"
    )


# --- disk ------------------------------------------------------------------------------
GIB = 1 << 30
DEFAULT_QUOTA = 20 * GIB
DEFAULT_MIN_FREE = 2 * GIB
QUOTA_EXCEEDED = "disk quota exceeded"


@dataclass(frozen=True, kw_only=True)
class DiskLimits:
    """What one build may fill: ``quota`` bytes in its folders, while leaving at least
    ``min_free`` bytes free on their filesystem (0: no bound); measured every
    ``interval`` seconds while a command runs."""

    quota: int = DEFAULT_QUOTA
    min_free: int = DEFAULT_MIN_FREE
    interval: float = 2.0

    def __post_init__(self) -> None:
        if self.quota < 0 or self.min_free < 0 or self.interval <= 0:
            raise ValueError("disk limits must be positive")


def tree_bytes(folder: Path) -> int:
    """Bytes on disk below ``folder`` (allocated blocks; links not followed; files that
    vanish while counted are skipped)."""
    total = 0
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
            except OSError:
                continue
            total += st.st_blocks * 512
    return total


def _size(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / (1 << 20):.1f} MiB"


class DiskWatch:
    """The watchdog of one build: the folders it may fill (more are added as sessions
    open) against :class:`DiskLimits`. :meth:`check` is the build's
    :data:`~refinery.builder.proc.STOP` check; once exceeded, :attr:`reason` says why."""

    def __init__(self, limits: DiskLimits, folders: Sequence[Path]) -> None:
        self.limits = limits
        self.folders = list(folders)
        self.reason = ""
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, folder: Path) -> None:
        with self._lock:
            self.folders.append(folder)

    def measure(self) -> str:
        """Measure now; the reason when a limit is exceeded ("" otherwise)."""
        with self._lock:
            folders = list(self.folders)
        used = sum(tree_bytes(f) for f in folders if f.exists())
        if self.limits.quota and used > self.limits.quota:
            return (
                f"{QUOTA_EXCEEDED}: the build's folders hold {_size(used)}, over its quota of "
                f"{_size(self.limits.quota)} (stopped; its work folder removed)"
            )
        existing = next((f for f in folders if f.exists()), None)
        if existing is not None and self.limits.min_free:
            st = os.statvfs(existing)
            free = st.f_bavail * st.f_frsize
            if free < self.limits.min_free:
                return (
                    f"{QUOTA_EXCEEDED}: {_size(free)} left free on the build's filesystem, "
                    f"under the minimum of {_size(self.limits.min_free)} (the build holds "
                    f"{_size(used)}; stopped, its work folder removed)"
                )
        return ""

    def check(self) -> str | None:
        """The reason to stop (measured at most every ``interval`` seconds)."""
        if self.reason:
            return self.reason
        now = time.monotonic()
        if now - self._last < self.limits.interval:
            return None
        self._last = now
        self.reason = self.measure()
        return self.reason or None


@contextlib.contextmanager
def watching(watch: DiskWatch | None) -> Iterator[DiskWatch | None]:
    """Every command run in this context (this thread) is stopped by ``watch``."""
    if watch is None:
        yield None
        return
    token = proc.STOP.set(watch.check)
    try:
        yield watch
    finally:
        proc.STOP.reset(token)


def empty_folder(folder: Path, keep: Path | None = None) -> None:
    """Remove everything below ``folder`` but ``keep`` (the attempt's log, when it lies
    there): what a build that filled the disk leaves."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if keep is not None and (entry == keep or entry in keep.parents):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


@runtime_checkable
class HasScratch(Protocol):
    """A session whose throwaway layer (installed packages, temp) lies on this host."""

    @property
    def scratch(self) -> Path: ...
