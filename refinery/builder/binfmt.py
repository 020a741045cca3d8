"""binfmt_misc registration for running foreign-architecture (s390x) binaries via QEMU.

The handler must carry the ``F`` (fix binary) flag: the kernel then opens the interpreter
when the handler is registered, so it works inside a chroot that has no QEMU binary.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from refinery.builder.errors import BuildRootUnavailable

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# ELF magic/mask for big-endian 64-bit s390x executables (e_machine 22), as shipped by
# Debian's qemu-user-static in /usr/share/binfmts/qemu-s390x.
_MAGIC = {
    "s390x": (
        r"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
        r"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    ),
}

# `uname -m` spellings of architectures that run s390x code without emulation.
_NATIVE = {"s390x": {"s390x"}}


@dataclass(frozen=True)
class BinfmtStatus:
    """State of the binfmt_misc handler for one architecture."""

    arch: str
    native: bool
    registered: bool
    enabled: bool
    flags: str
    interpreter: str | None

    @property
    def usable(self) -> bool:
        return self.native or (self.registered and self.enabled and "F" in self.flags)


def handler_name(arch: str) -> str:
    return f"qemu-{arch}"


def parse_handler(text: str) -> tuple[bool, str, str | None]:
    """Parse a /proc/sys/fs/binfmt_misc/<name> file: (enabled, flags, interpreter)."""
    enabled = False
    flags = ""
    interpreter: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line == "enabled":
            enabled = True
        elif line.startswith("flags:"):
            flags = line.partition(":")[2].strip()
        elif line.startswith("interpreter "):
            interpreter = line.partition(" ")[2].strip()
    return enabled, flags, interpreter


def status(
    arch: str = "s390x", binfmt_dir: Path = BINFMT_DIR, *, machine: str | None = None
) -> BinfmtStatus:
    """The handler for ``arch`` in ``binfmt_dir``; ``machine`` is the host's ``uname -m``
    (default: this host's)."""
    native = (machine or platform.machine()) in _NATIVE.get(arch, {arch})
    entry = binfmt_dir / handler_name(arch)
    try:
        text = entry.read_text()
    except OSError:
        return BinfmtStatus(arch, native, False, False, "", None)
    enabled, flags, interpreter = parse_handler(text)
    return BinfmtStatus(arch, native, True, enabled, flags, interpreter)


def find_interpreter(arch: str) -> str | None:
    """The static QEMU user emulator for ``arch`` on this host, if installed."""
    candidates = [
        f"/usr/libexec/qemu-binfmt/{arch}-binfmt-P",
        shutil.which(f"qemu-{arch}-static") or "",
        f"/usr/bin/qemu-{arch}-static",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def register_line(arch: str, interpreter: str) -> str:
    """The line written to binfmt_misc/register for ``arch`` with flags F (and P kept off)."""
    magic, mask = _MAGIC[arch]
    return f":{handler_name(arch)}:M:0:{magic}:{mask}:{interpreter}:F"


def _mounted(binfmt_dir: Path) -> bool:
    return (binfmt_dir / "register").exists()


def ensure(
    arch: str = "s390x", binfmt_dir: Path = BINFMT_DIR, *, machine: str | None = None
) -> BinfmtStatus:
    """Make sure ``arch`` binaries run here; register the QEMU handler if needed.

    Raises :class:`BuildRootUnavailable` with a sentence naming what is missing.
    """
    current = status(arch, binfmt_dir, machine=machine)
    if current.usable:
        return current
    if arch not in _MAGIC:
        raise BuildRootUnavailable(f"no binfmt definition for architecture {arch!r}")
    interpreter = find_interpreter(arch)
    if interpreter is None:
        raise BuildRootUnavailable(
            f"qemu-{arch}-static is not installed; install it with "
            "`apt-get install qemu-user-static binfmt-support`"
        )
    if os.geteuid() != 0:
        raise BuildRootUnavailable(
            f"the {handler_name(arch)} binfmt_misc handler is not registered (with flag F) "
            "and registering it needs root; run `sudo update-binfmts --enable "
            f"{handler_name(arch)}` once"
        )
    if not _mounted(binfmt_dir):
        done = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not _mounted(binfmt_dir):
            raise BuildRootUnavailable(
                f"binfmt_misc is not available at {binfmt_dir} and mounting it failed: "
                f"{done.stderr.strip() or 'kernel without binfmt_misc?'}"
            )
    if shutil.which("update-binfmts") and not current.registered:
        subprocess.run(
            ["update-binfmts", "--enable", handler_name(arch)],
            capture_output=True,
            check=False,
        )
        current = status(arch, binfmt_dir, machine=machine)
        if current.usable:
            return current
    if current.registered:
        # Registered without F (or disabled): replace it with our definition.
        (binfmt_dir / handler_name(arch)).write_text("-1")
    (binfmt_dir / "register").write_text(register_line(arch, interpreter))
    current = status(arch, binfmt_dir, machine=machine)
    if not current.usable:
        raise BuildRootUnavailable(
            f"registered {handler_name(arch)} but the kernel reports it unusable: {current}"
        )
    return current
