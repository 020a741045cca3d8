"""The build stage's options: frozen, keyword-only, defaults in one place, checked once.

The CLI reads its flags, the environment and pip's configuration once and makes these;
the build stage only reads them (cibuildwheel's ``GlobalOptions``/``BuildOptions`` are
the model). Nothing below ``refinery.builder`` looks at ``os.environ`` or the home
directory: what it needs of them arrives here.

* :class:`RootOptions` — which build root, made from what (``select_root``);
* :class:`BuildOptions` — how every attempt runs (``build_node``);
* :class:`RunOptions` — how a plan is worked through (``build_plan``);
* :class:`AttemptSpec` — what differs between two attempts (folders, a hint's fix).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from refinery.builder.container import DEFAULT_IMAGE, default_image, forced_engine
from refinery.builder.isolation import DiskLimits
from refinery.builder.native import KEEP_ENV
from refinery.builder.pipconf import HostPip
from refinery.builder.proc import OnLine
from refinery.builder.rootfs_image import DEFAULT_RELEASE
from refinery.builder.roots import unknown_backend
from refinery.core.cache import CacheRoot
from refinery.core.models import DEFAULT_PLATFORM, SourcePatch
from refinery.core.vocab import BACKEND_CHOICES, INSTALLERS, BackendChoice, Installer
from refinery.hints.models import PackageTests
from refinery.store.blobs import BlobStore

DEFAULT_TIMEOUT = 3600.0
DEFAULT_JOBS = 1
DEFAULT_MAX_ATTEMPTS = 3

#: A package's own test settings by (name, python), e.g. the hint catalog's ``tests``.
#: (package, python, version) -> the package's test settings, or None.
TestsFor = Callable[[str, str, str], PackageTests | None]
#: (package, python) -> modules the smoke test imports besides the top-level ones.
ImportsFor = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True, kw_only=True)
class RootOptions:
    """Which build root and what it is made of.

    ``backend`` is a backend or ``auto``; ``release`` the Debian release of the rootfs
    backend; ``image`` the container image reference (pinned by digest); ``engine`` the
    only container engine to try (None: podman or docker, whichever answers);
    ``host_env`` the host variables the native backend keeps; ``cache`` the one cache root.
    """

    cache: CacheRoot
    backend: BackendChoice = "auto"
    release: str = DEFAULT_RELEASE
    image: str = DEFAULT_IMAGE
    engine: str | None = None
    host_env: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_CHOICES:
            raise unknown_backend(self.backend)

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        *,
        cache: CacheRoot,
        backend: BackendChoice = "auto",
        release: str | None = None,
        image: str | None = None,
    ) -> RootOptions:
        """Flags first, then ``REFINERY_CONTAINER_IMAGE``/``REFINERY_CONTAINER_ENGINE``
        and the host variables a native build keeps, all read from ``environ``."""
        return cls(
            cache=cache,
            backend=backend,
            release=release or DEFAULT_RELEASE,
            image=image or default_image(environ),
            engine=forced_engine(environ),
            host_env=tuple((k, environ[k]) for k in KEEP_ENV if k in environ),
        )


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How every attempt runs.

    ``installer`` picks what fills pypa/build's isolated environment: ``uv`` (for the
    target architecture, much faster under emulation), ``pip``, or ``auto`` (uv when it
    can be had). ``timeout`` is the wall-clock budget of one attempt in seconds;
    ``extra_index`` extra index URLs offered to pip; ``pip`` the host's pip settings
    (carried into the roots where they make sense); ``cache`` holds the build tools and
    the pip cache shared by every build. ``packs`` is the folder of library pack recipes
    (``packs/*.toml``) a fix may name; ``pack_store`` the store that keeps made packs
    by content hash (None: the cache only). ``isolate_network``: the PEP 517 build runs
    without a network once its requirements are fetched (a package's fix may allow it);
    ``disk``: what one build may fill (None: unbounded).
    """

    cache: CacheRoot
    installer: Installer = "auto"
    timeout: float = DEFAULT_TIMEOUT
    extra_index: tuple[str, ...] = ()
    pip: HostPip = field(default_factory=HostPip)
    packs: Path = Path("packs")
    pack_store: BlobStore | None = None
    isolate_network: bool = True
    disk: DiskLimits | None = field(default_factory=DiskLimits)

    def __post_init__(self) -> None:
        if self.installer not in INSTALLERS:
            raise ValueError(f"installer must be one of {INSTALLERS}, not {self.installer!r}")
        object.__setattr__(self, "extra_index", tuple(self.extra_index))


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How a plan is worked through.

    ``jobs`` builds run in parallel within a wave; a node gets at most ``max_attempts``
    attempts (retries need a fix from the advisor); ``only`` restricts the run to these
    node keys (``name==version@python``) or ``name==version`` pairs; ``workdir`` is kept
    after the run when given (a temporary folder otherwise); ``catalog_digest`` is
    recorded with every attempt (default: the plan's); ``tests`` gives a node's own test
    settings (run after the smoke test; None: no package tests).
    """

    build: BuildOptions
    jobs: int = DEFAULT_JOBS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    only: tuple[str, ...] | None = None
    workdir: Path | None = None
    catalog_digest: str = ""
    tests: TestsFor | None = None
    imports: ImportsFor | None = None

    def __post_init__(self) -> None:
        if self.only is not None:
            object.__setattr__(self, "only", tuple(self.only))


@dataclass(frozen=True, kw_only=True)
class AttemptSpec:
    """What one attempt at one node gets, beyond the run's :class:`BuildOptions`.

    ``workdir`` is the attempt's scratch folder (created; the final wheel is placed in
    ``workdir/wheelhouse``); ``log`` its log file (default ``workdir/build.log``);
    ``find_links`` a folder of wheels built in earlier waves (offered to pip). A hint's
    fix: ``env`` for the build command, pip ``constraints``, ``system_packages`` for the
    root's package manager, ``build_requires`` added to the sdist's
    ``[build-system].requires``. Output lines go to ``on_line``. ``target_platform`` is
    the promise the repaired wheel must keep (the plan's target for the node's Python).
    ``packs``: library packs a cross build for an older glibc installs, standing in for
    ``pack_packages`` of ``system_packages`` there; ``config_settings``: PEP 517 ``-C``
    ``key=value`` settings for the build backend; ``tests``: the package's own tests,
    run on the target after the smoke test (None: none); ``network``: why this package's
    build keeps the network (a fix's; "": it runs isolated where the backend can);
    ``patches``: a fix's patches, applied to the unpacked sdist before anything runs;
    ``vendor``: packs (of ``packs``) copied into the unpacked sdist, pack -> folder.
    """

    workdir: Path
    log: Path | None = None
    find_links: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[str, ...] = ()
    system_packages: tuple[str, ...] = ()
    build_requires: tuple[str, ...] = ()
    on_line: OnLine | None = None
    target_platform: str = DEFAULT_PLATFORM
    packs: tuple[str, ...] = ()
    pack_packages: tuple[str, ...] = ()
    config_settings: tuple[str, ...] = ()
    tests: PackageTests | None = None
    network: str = ""
    patches: tuple[SourcePatch, ...] = ()
    vendor: Mapping[str, str] = field(default_factory=dict)
    imports: tuple[str, ...] = ()  # the smoke test imports these too (a package entry's)

    @property
    def log_file(self) -> Path:
        return self.log or self.workdir / "build.log"
