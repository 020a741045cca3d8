"""The build-root protocol every backend implements, and backend selection.

A :class:`BuildRoot` is a *kind* of environment (a cached Debian s390x rootfs, a
manylinux container image, the s390x host itself). Each build opens two throwaway
:class:`Session` s from it: a *build* session (where the wheel is compiled, recipe
packages may be installed) and a *smoke* session (a clean one, where the repaired wheel
is imported). Keeping the two apart is what lets the ``cross`` backend compile with host
cross compilers (build session on the host, a copy of the rootfs root as sysroot) and
still smoke-test under emulation (smoke session from the rootfs backend).

Paths: the build step only holds host paths (under :class:`Mounts`); a session maps them
to what the command inside sees with :meth:`Session.inside`.
"""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from refinery.builder.errors import BuildRootUnavailable, SystemRecipeFailed
from refinery.builder.proc import OnLine, ProcResult, run
from refinery.core.vocab import BACKEND_CHOICES

if TYPE_CHECKING:
    import subprocess

    from refinery.builder.options import RootOptions

BACKENDS = BACKEND_CHOICES
S390X_MACHINES = frozenset({"s390x"})
#: Backends whose build commands run on the host (not the target): uv for the target
#: architecture cannot fill their build environments.
HOST_RUN_BACKENDS = frozenset({"cross"})


@dataclass(frozen=True)
class Mounts:
    """Host directories a session exposes to the commands it runs.

    ``work`` is read-write (sources, dist, logs of one build); ``pip_cache`` is shared
    between builds; ``wheels`` (optional, read-only) holds wheels of earlier waves and
    seed wheels (setuptools, wheel) offered with ``--find-links``; ``tools`` (read-only)
    holds the pure-Python build frontend put on ``PYTHONPATH``.
    """

    work: Path
    pip_cache: Path
    tools: Path
    wheels: Path | None = None

    def pairs(self, inside_base: str) -> tuple[tuple[Path, str, bool], ...]:
        """(host path, path inside, read_only) for every mount, under ``inside_base``."""
        out: list[tuple[Path, str, bool]] = [
            (self.work, f"{inside_base}/work", False),
            (self.pip_cache, f"{inside_base}/pip-cache", False),
            (self.tools, f"{inside_base}/tools", True),
        ]
        if self.wheels is not None:
            out.append((self.wheels, f"{inside_base}/wheels", True))
        return tuple(out)


def map_inside(pairs: Sequence[tuple[Path, str, bool]], host: Path) -> str:
    """The path a command inside sees for ``host`` (which must lie under a mount)."""
    resolved = host.resolve()
    for src, dst, _ro in pairs:
        base = src.resolve()
        if resolved == base or base in resolved.parents:
            rel = resolved.relative_to(base).as_posix()
            return dst if rel == "." else f"{dst}/{rel}"
    raise ValueError(f"{host} is not under any mount of this session")


INSIDE_BASE = "/refinery"  # where host folders appear inside every build root


@dataclass
class BoundSession:
    """What sessions that see host folders through bind mounts share: the mapping of a
    host path to the path the build sees."""

    mounts: Mounts
    _binds: tuple[tuple[Path, str, bool], ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        self._binds = self.mounts.pairs(INSIDE_BASE)

    def inside(self, host: Path) -> str:
        return map_inside(self._binds, host)


@dataclass(frozen=True)
class Command:
    """A command as the host runs it, after a session wrapped it (namespace, exec …)."""

    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    timeout: float | None = None
    cwd: Path | None = None


def quoted(packages: Sequence[str]) -> str:
    """Package names for a shell command line."""
    return " ".join(shlex.quote(p) for p in packages)


class ShellSession:
    """``run`` and ``install_system`` written once for every backend's session.

    A backend says how a command is wrapped for its environment (:meth:`command`) and
    which shell command installs distro packages there (:meth:`install_command`).
    """

    #: Extra environment of the package-manager command.
    install_env: ClassVar[Mapping[str, str] | None] = None

    def config_settings(self, build_backend: str) -> tuple[str, ...]:
        """PEP 517 config settings (``key=value``) the build needs here; none by default."""
        return ()

    def command(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None, timeout: float | None
    ) -> Command:
        raise NotImplementedError

    def install_command(self, packages: Sequence[str]) -> tuple[str, str]:
        """(package manager key, shell command) installing ``packages``."""
        raise NotImplementedError

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
        wrapped = self.command(argv, env=env or {}, cwd=cwd, timeout=timeout)
        return run(
            wrapped.argv,
            env=wrapped.env,
            timeout=wrapped.timeout,
            on_line=on_line,
            log=log,
            cwd=wrapped.cwd,
        )

    def install_system(
        self,
        packages: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        manager, shell = self.install_command(packages)
        result = self.run(
            ["sh", "-c", shell], timeout=timeout, on_line=on_line, log=log, env=self.install_env
        )
        if not result.ok:
            raise SystemRecipeFailed(manager, tuple(packages), result.exit_code)
        return result


class Session(Protocol):
    """One throwaway environment; gone when its context manager exits."""

    @property
    def backend(self) -> str: ...

    @property
    def host_auditwheel(self) -> bool:
        """True: run auditwheel on the host with :attr:`ldpaths`; False: run it inside."""
        ...

    @property
    def ldpaths(self) -> tuple[Path, ...]:
        """Host directories holding the target's shared libraries (host auditwheel)."""
        ...

    @property
    def ca_bundle(self) -> str | None:
        """CA bundle path pip inside should use; None keeps the host's ``cert`` setting."""
        ...

    def inside(self, host: Path) -> str:
        """Map a host path under the session's mounts to the path commands see."""
        ...

    def python(self, version: str) -> str:
        """The interpreter for ``version`` (path as seen inside); raises MissingPython."""
        ...

    def config_settings(self, build_backend: str) -> tuple[str, ...]:
        """PEP 517 config settings (``key=value``) a build with ``build_backend`` (as
        :func:`refinery.builder.artifacts.native_sources` names it) needs here."""
        ...

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
        """Run a command inside; output streamed to ``on_line`` and appended to ``log``."""
        ...

    def install_system(
        self,
        packages: Sequence[str],
        *,
        timeout: float | None = None,
        on_line: OnLine | None = None,
        log: Path | None = None,
    ) -> ProcResult:
        """Install distro packages (apt/dnf) here; raises SystemRecipeFailed on failure."""
        ...

    @property
    def package_manager(self) -> str:
        """``apt``, ``dnf`` or ``yum``: which recipe key applies to this session."""
        ...


class BuildRoot(Protocol):
    """A backend: makes build and smoke sessions for one target architecture."""

    @property
    def backend(self) -> str: ...

    @property
    def arch(self) -> str:
        """Target architecture (``uname -m`` spelling) of the wheels built here."""
        ...

    @property
    def image(self) -> str:
        """What the sessions are made from, for the record (image or rootfs digest)."""
        ...

    def prepare(self, on_line: OnLine | None = None) -> None:
        """Make sure the root can be used (cache, binfmt); may take minutes the first time."""
        ...

    def pythons(self) -> tuple[str, ...]:
        """Target Pythons (``"3.11"``…) this root provides."""
        ...

    def build_session(
        self, mounts: Mounts, target_platform: str | None = None
    ) -> AbstractContextManager[Session]:
        """A throwaway build session; ``target_platform`` is the promise the wheel must
        keep (a backend may choose its compilers by it; None: no promise)."""
        ...

    def smoke_session(self, mounts: Mounts) -> AbstractContextManager[Session]: ...


@dataclass(frozen=True)
class HostFacts:
    """What backend selection looks at; injectable for tests."""

    machine: str
    engine: str | None  # a container engine that answered, if any
    cross: bool = False  # the s390x cross toolchain and the rootfs prerequisites are here


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def host_facts(
    engines: Sequence[str] | None = None,
    *,
    machine: str | None = None,
    which: Callable[[str], str | None] | None = None,
    runner: Runner | None = None,
    cross: bool | None = None,
) -> HostFacts:
    """This host's machine, the first of ``engines`` (docker, podman) that answers and
    whether the cross toolchain is present.

    Every part can be given instead of looked at (tests of both branches)."""
    from refinery.builder import container

    engine = container.detect_engine(
        candidates=engines or container.ENGINES,
        which=which or container.which,
        runner=runner or container.run_quiet,
    )
    if cross is None:
        cross = cross_available(which or container.which)
    return HostFacts(machine=machine or platform.machine(), engine=engine, cross=cross)


def cross_available(which: Callable[[str], str | None], euid: int | None = None) -> bool:
    """The s390x cross compilers, QEMU and the tools of the rootfs root (mount namespaces
    need root) are all here."""
    from refinery.builder.crosstools import missing_tools

    euid = os.geteuid() if euid is None else euid
    return euid == 0 and not missing_tools("s390x", which) and which("chroot") is not None


def unknown_backend(requested: str) -> BuildRootUnavailable:
    return BuildRootUnavailable(
        f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}"
    )


def choose_backend(requested: str, facts: HostFacts) -> str:
    """``auto``: native on s390x; elsewhere cross when its toolchain is present, container
    if an engine responds, else rootfs."""
    if requested not in BACKENDS:
        raise unknown_backend(requested)
    if requested != "auto":
        return requested
    if facts.machine in S390X_MACHINES:
        return "native"
    if facts.cross:
        return "cross"
    if facts.engine is not None:
        return "container"
    return "rootfs"


def select_root(options: RootOptions, facts: HostFacts | None = None) -> BuildRoot:
    """The build root ``options.backend`` names (``auto`` picks one for this host).

    ``facts`` are looked up on this host when not given (and only when needed).
    """
    backend = options.backend
    needs_facts = backend in ("auto", "container")
    engines = (options.engine,) if options.engine else None
    facts = facts or (host_facts(engines) if needs_facts else HostFacts(platform.machine(), None))
    chosen = choose_backend(backend, facts)
    if chosen == "native":
        from refinery.builder.native import NativeRoot

        if facts.machine not in S390X_MACHINES:
            raise BuildRootUnavailable(
                f"the native backend builds for the host ({facts.machine}), not s390x; "
                "use --backend rootfs or container here"
            )
        return NativeRoot(machine=facts.machine, env=dict(options.host_env))
    if chosen == "container":
        from refinery.builder.container import ContainerRoot

        if facts.engine is None:
            raise BuildRootUnavailable(
                "no container engine answered (tried podman and docker); start one or use "
                "--backend rootfs"
            )
        return ContainerRoot(engine=facts.engine, image=options.image)
    if chosen in ("rootfs", "cross"):
        from refinery.builder.rootfs import RootfsRoot
        from refinery.builder.rootfs_image import RootfsSpec

        rootfs = RootfsRoot(RootfsSpec(release=options.release), cache=options.cache.roots)
        if chosen == "rootfs":
            return rootfs
        from refinery.builder.cross import CrossRoot

        return CrossRoot(rootfs, cache=options.cache.cross)
    raise unknown_backend(chosen)  # choose_backend checked
