"""A store over a read-only base: what a GitHub Actions build job writes into.

A build job of wave N needs what earlier waves built (their records and wheels) and the
records of its own nodes (attempt numbers continue from them), but it must upload only
what it produced itself: re-uploading everything it read makes artifacts grow with every
wave. :class:`OverlayBlobStore` reads through to ``base`` (a folder the job downloaded,
never written) and writes only into ``upper`` (the staging folder the job uploads).

Compare-and-swap over the two layers: a key read from the base carries a tag marked as
such, and the first write of it into the upper layer must find the upper layer without
it (as if the base's version were the upper's). Listings are the union of both layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from refinery.store.blobs import BlobStore

_BASE = "base:"


class OverlayBlobStore:
    """``upper`` (written) over ``base`` (read only); the URL is the upper's."""

    def __init__(self, upper: BlobStore, base: BlobStore) -> None:
        self.upper = upper
        self.base = base
        self.url = upper.url

    def get(self, key: str) -> tuple[bytes, str] | None:
        got = self.upper.get(key)
        if got is not None:
            return got
        below = self.base.get(key)
        return (below[0], _BASE + below[1]) if below is not None else None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if self.base.exists(key):
            return False
        return self.upper.put_if_absent(key, data)

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        if etag is not None and etag.startswith(_BASE):
            return self.upper.put_if_match(key, data, None)
        if etag is None and self.base.exists(key) and not self.upper.exists(key):
            from refinery.core.errors import ConflictError

            raise ConflictError(f"{key}: exists in the base layer")
        return self.upper.put_if_match(key, data, etag)

    def put(self, key: str, data: bytes) -> None:
        self.upper.put(key, data)

    def list(self, prefix: str) -> Iterator[str]:
        seen: set[str] = set()
        for key in self.upper.list(prefix):
            seen.add(key)
            yield key
        for key in self.base.list(prefix):
            if key not in seen:
                yield key

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for key, tag in self.upper.list_tags(prefix):
            seen.add(key)
            yield key, tag
        for key, tag in self.base.list_tags(prefix):
            if key not in seen:
                yield key, _BASE + tag

    def exists(self, key: str) -> bool:
        return self.upper.exists(key) or self.base.exists(key)

    def delete(self, key: str) -> None:
        self.upper.delete(key)

    def local_path(self, key: str) -> Path | None:
        if not self.upper.exists(key) and self.base.exists(key):
            return self.base.local_path(key)
        return self.upper.local_path(key)
