"""The stage objects, assembled from the settings and the environment (read here, at
the edge): the upstream index client, the resolver, the hint advisor. Commands and the
pipeline receive them ready-made."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from refinery.cli.app import Settings
from refinery.core.models import Target

if TYPE_CHECKING:
    from refinery.builder.roots import BuildRoot
    from refinery.core.cache import CacheRoot
    from refinery.hints.advise import Advisor
    from refinery.hints.derive import Deriver
    from refinery.plan import UvResolver
    from refinery.upstream.simple import IndexClient


def targets(pythons: Sequence[str], platform: str) -> tuple[Target, ...]:
    """The plan's targets: each Python (default 3.11) on ``platform`` (checked)."""
    from refinery.core.target import parse_python, platform_tags

    out: list[Target] = []
    for py in dict.fromkeys(pythons or ("3.11",)):
        parse_python(py)
        out.append(Target(py, platform))
    platform_tags(out[0])
    return tuple(out)


def index_client(settings: Settings, *, refresh: bool = False) -> IndexClient:
    """The upstream simple-API client (``REFINERY_INDEX_RETRIES``, default 4)."""
    from refinery.upstream.simple import IndexClient, IndexOptions

    retries = int(os.environ.get("REFINERY_INDEX_RETRIES", "4"))
    return IndexClient(
        settings.index_url,
        cache_dir=settings.cache_root.index,
        options=IndexOptions(retries=retries, refresh=refresh),
    )


def resolver(settings: Settings, *, refresh: bool = False) -> UvResolver:
    """uv against the upstream index, with this process's environment."""
    from refinery.plan import UvResolver

    return UvResolver(
        settings.index_url,
        cache_dir=settings.cache_root.resolutions,
        environ=os.environ,
        refresh=refresh,
    )


def root_manager(backend: str, root: BuildRoot | None = None) -> str | None:
    """The package manager recipes use in ``backend``'s roots (native: the host's; a
    container: its image's, when ``root`` is given)."""
    from refinery.builder.container import ContainerRoot
    from refinery.hints.advise import manager_for_backend

    detected = None
    if backend == "native":
        from refinery.builder.native import package_manager

        found = package_manager()
        detected = found[0] if found else None
    elif isinstance(root, ContainerRoot) and (image := root.facts().package_manager):
        return image[0]
    return manager_for_backend(backend, detected)


def deriver_for(root: BuildRoot, cache: CacheRoot) -> Deriver | None:
    """Fixes derived from the file index of the root's own distribution: Debian's
    ``Contents`` of the release and mirror a rootfs (or a cross build's sysroot) was made
    from. None for roots without one (containers, the native host)."""
    from refinery.builder.distindex import root_index
    from refinery.hints.derive import file_index_deriver

    found = root_index(root, cache)
    return None if found is None else file_index_deriver(found.index, found.multiarch)


def make_advisor(
    hints_dir: Path,
    backend: str,
    *,
    max_attempts: int = 3,
    backoff: float = 0.0,
    forced: Sequence[str] = (),
    deriver: Deriver | None = None,
    root: BuildRoot | None = None,
) -> Advisor:
    """The runner's ``advise`` (and ``first_fix``) from the catalog in ``hints_dir``;
    ``deriver`` answers what the catalog cannot (see :func:`deriver_for`); ``root``, when
    given, may name its own package manager (a container image's)."""
    from refinery.hints import load_catalog
    from refinery.hints.advise import Advisor, RetrySettings

    catalog = load_catalog(hints_dir)
    settings = RetrySettings(max_attempts=max_attempts, backoff=backoff)
    manager = root_manager(backend, root)
    return Advisor(catalog, manager, settings, forced=forced, deriver=deriver)
