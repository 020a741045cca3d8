"""Build roots and the build step: turn sdists into repaired, smoke-tested s390x wheels.

The API the CLI uses:

* :func:`select_root` (:class:`RootOptions`: ``auto|native|container|rootfs``) → a
  :class:`BuildRoot`;
* :func:`create_buildroot` — ``refinery buildroot create`` (the cached Debian rootfs);
* :func:`build_node` — one attempt for one plan node (:class:`BuildOptions`,
  :class:`AttemptSpec`) → :class:`BuildOutcome`;
* :func:`build_plan` — a whole plan (:class:`RunOptions`), wave by wave, recorded in the
  store → :class:`RunSummary`, with progress as :class:`BuildEvent` s.

Nothing in this package prints; output lines and events go to callbacks. Nothing in it
reads the environment: the CLI builds the option objects (and the one
:class:`~refinery.core.cache.CacheRoot`) and passes them in.
"""

from __future__ import annotations

from pathlib import Path

from refinery.builder.errors import (
    BuildError,
    BuildRootUnavailable,
    MissingPython,
    SdistError,
    SystemRecipeFailed,
)
from refinery.builder.options import AttemptSpec, BuildOptions, RootOptions, RunOptions
from refinery.builder.proc import OnLine
from refinery.builder.rootfs_image import (
    DEFAULT_PACKAGES,
    DEFAULT_RELEASE,
    RootfsImage,
    RootfsSpec,
)
from refinery.builder.roots import BACKENDS, BuildRoot, Mounts, Session, select_root
from refinery.builder.runner import BuildEvent, Fix, NodeResult, RunSummary, build_plan
from refinery.builder.smoke import SmokeResult
from refinery.builder.step import PHASE_PREFIX, BuildOutcome, Durations, build_node


def create_buildroot(
    cache: Path,
    release: str = DEFAULT_RELEASE,
    *,
    arch: str = "s390x",
    packages: tuple[str, ...] = DEFAULT_PACKAGES,
    force: bool = False,
    mirror: str | None = None,
    on_line: OnLine | None = None,
) -> RootfsImage:
    """Make (or reuse, unless ``force``) the cached root filesystem tarball in ``cache``
    (the cache root's roots folder).

    Registers the QEMU binfmt handler if needed; raises :class:`BuildRootUnavailable`
    naming what is missing (not root, no binfmt_misc, no mmdebstrap, mirror without
    the architecture).
    """
    from refinery.builder import rootfs_image

    spec = RootfsSpec(release=release, arch=arch, packages=packages)
    if not force:
        found = rootfs_image.cached(spec, cache)
        if found is not None:
            return found
    return rootfs_image.create(spec, cache=cache, mirror=mirror, on_line=on_line)


__all__ = [
    "BACKENDS",
    "PHASE_PREFIX",
    "AttemptSpec",
    "BuildError",
    "BuildEvent",
    "BuildOptions",
    "BuildOutcome",
    "BuildRoot",
    "BuildRootUnavailable",
    "Durations",
    "Fix",
    "MissingPython",
    "Mounts",
    "NodeResult",
    "RootOptions",
    "RootfsImage",
    "RootfsSpec",
    "RunOptions",
    "RunSummary",
    "SdistError",
    "Session",
    "SmokeResult",
    "SystemRecipeFailed",
    "build_node",
    "build_plan",
    "create_buildroot",
    "select_root",
]
