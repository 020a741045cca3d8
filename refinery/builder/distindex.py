"""The file index of a root's own distribution.

Debian's ``Contents`` index of the release a root was made from: the rootfs's release
and mirror (a cross build's sysroot and smoke sessions are that rootfs's), or a Debian
container image's release (its os-release, on the host's Debian mirror). What a derived
fix looks a missing header or library up in, and what names the package that ships a
system library the smoke test's clean root is given. Other roots (RPM images, the native
host) have none; ``dnf`` answers by file itself (a library's provide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from refinery.builder.roots import BuildRoot
    from refinery.core.cache import CacheRoot
    from refinery.hints.derive import FileIndex


@dataclass(frozen=True)
class RootIndex:
    """The root's file index and the multiarch triplet of its library folders."""

    index: FileIndex  # refinery.upstream.debian.ContentsIndex
    multiarch: str


def root_index(root: BuildRoot, cache: CacheRoot) -> RootIndex | None:
    """The file index of ``root``'s distribution (downloaded on the first query, then
    cached below ``cache.distro``); None for roots that have none."""
    from refinery.builder.container import ContainerRoot
    from refinery.builder.cross import CrossRoot
    from refinery.builder.rootfs import MULTIARCH, RootfsRoot
    from refinery.builder.rootfs_image import cached, host_mirror
    from refinery.upstream.debian import ContentsIndex, ContentsSource

    rootfs = root.rootfs if isinstance(root, CrossRoot) else root
    if isinstance(rootfs, RootfsRoot):
        image = cached(rootfs.spec, rootfs.cache)
        mirror = image.mirror if image is not None else host_mirror()
        release = rootfs.spec.release
    elif isinstance(rootfs, ContainerRoot) and rootfs.facts().distro[0] == "debian":
        mirror, release = host_mirror(), rootfs.facts().distro[1]
    else:
        return None
    if not release:
        return None
    source = ContentsSource(mirror, release, rootfs.arch)
    multiarch = MULTIARCH.get(rootfs.arch, f"{rootfs.arch}-linux-gnu")
    return RootIndex(ContentsIndex(source, cache.distro), multiarch)
