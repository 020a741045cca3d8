"""The ``native`` backend: the host *is* the target (e.g. IBM's s390x runners).

No emulation and no root filesystem: commands run on the host in the session's work
directory. Isolation comes from Python itself: pypa/build makes a fresh isolated venv for
every build, and the smoke test imports from a fresh ``--without-pip`` venv. Recipe
packages are installed with the host's package manager (which needs root; on CI runners
that is the point of an ephemeral machine).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from refinery.builder.errors import MissingPython, SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult, run
from refinery.builder.roots import Mounts

CANDIDATE_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
_KEEP_ENV = (
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


def find_pythons(
    which: Callable[[str], str | None] = shutil.which,
    candidates: Sequence[str] = CANDIDATE_PYTHONS,
) -> dict[str, str]:
    """``{"3.11": "/usr/bin/python3.11", …}`` for the interpreters on PATH."""
    found: dict[str, str] = {}
    for version in candidates:
        path = which(f"python{version}")
        if path:
            found[version] = path
    return found


def package_manager(which: Callable[[str], str | None] = shutil.which) -> tuple[str, str] | None:
    """(recipe key, install command prefix) of the host's package manager."""
    for key, tool, command in _MANAGERS:
        if which(tool):
            return key, command
    return None


class NativeSession:
    def __init__(self, root: NativeRoot, mounts: Mounts, tmp: Path) -> None:
        self.root = root
        self.mounts = mounts
        self.tmp = tmp

    @property
    def backend(self) -> str:
        return "native"

    @property
    def package_manager(self) -> str:
        found = package_manager(self.root.which)
        return found[0] if found else "apt"

    @property
    def host_auditwheel(self) -> bool:
        return True

    @property
    def ldpaths(self) -> tuple[Path, ...]:
        return ()  # the host's own loader paths (auditwheel's default)

    @property
    def ca_bundle(self) -> str | None:
        return None  # the host's pip settings apply as they are

    def inside(self, host: Path) -> str:
        return str(host.resolve())

    def python(self, version: str) -> str:
        pythons = self.root.interpreters()
        if version not in pythons:
            raise MissingPython(version, tuple(pythons), f"native host {self.root.arch}")
        return pythons[version]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
        cwd: str | None = None,
    ) -> ProcResult:
        full_env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        full_env.update(
            {
                "PYTHONDONTWRITEBYTECODE": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "TMPDIR": str(self.tmp),
            }
        )
        full_env.update(env or {})
        return run(
            argv,
            env=full_env,
            timeout=timeout,
            on_line=on_line,
            log=log,
            cwd=Path(cwd) if cwd else self.mounts.work,
        )

    def install_system(
        self,
        packages: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        found = package_manager(self.root.which)
        if found is None:
            raise SystemRecipeFailed("none", tuple(packages), 127)
        key, command = found
        names = " ".join(shlex.quote(p) for p in packages)
        prefix = "" if os.geteuid() == 0 else "sudo -n "
        result = self.run(
            ["sh", "-c", f"{prefix}{command} {names}"],
            timeout=timeout,
            on_line=on_line,
            log=log,
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
        if not result.ok:
            raise SystemRecipeFailed(key, tuple(packages), result.exit_code)
        return result


class NativeRoot:
    """Builds on the host itself. ``machine`` is the host's ``uname -m``."""

    def __init__(
        self,
        machine: str | None = None,
        which: Callable[[str], str | None] = shutil.which,
    ) -> None:
        self.machine = machine or platform.machine()
        self.which = which

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

    def build_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[NativeSession]:
        return self._session(mounts)

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[NativeSession]:
        return self._session(mounts)
