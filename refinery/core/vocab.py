"""The refinery's vocabulary, defined once: every other module and the CLI's choices
derive from these names (a backend the CLI offers is a backend that exists)."""

from __future__ import annotations

from typing import Final, Literal, get_args

#: Build roots behind the one :class:`~refinery.builder.roots.BuildRoot` protocol.
Backend = Literal["native", "container", "rootfs", "cross"]
BACKENDS: Final[tuple[Backend, ...]] = get_args(Backend)
#: What ``--backend`` accepts: a backend, or ``auto`` (chosen for the host).
BackendChoice = Literal["auto", "native", "container", "rootfs", "cross"]
BACKEND_CHOICES: Final[tuple[BackendChoice, ...]] = get_args(BackendChoice)

#: System package managers a hint's fix can name.
PackageManager = Literal["apt", "dnf", "yum"]
PACKAGE_MANAGERS: Final[tuple[PackageManager, ...]] = get_args(PackageManager)

#: Installers that fill pypa/build's isolated environment.
Installer = Literal["auto", "uv", "pip"]
INSTALLERS: Final[tuple[Installer, ...]] = get_args(Installer)

#: What a failed build can say it lacks (``refinery.hints.missing``).
MissingKind = Literal["header", "library", "pkgconfig", "cmake", "command", "compiler", "module"]
MISSING_KINDS: Final[tuple[MissingKind, ...]] = get_args(MissingKind)

#: A file on a simple index.
DistKind = Literal["wheel", "sdist"]

#: Progress events the build runner emits for the CLI to render.
EventKind = Literal[
    "wave", "skip", "leased", "building", "line", "retry", "fallback", "done", "finished"
]
EVENT_KINDS: Final[tuple[EventKind, ...]] = get_args(EventKind)

#: PEP 691 / PEP 503 media types.
SIMPLE_JSON: Final = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML: Final = "application/vnd.pypi.simple.v1+html"
