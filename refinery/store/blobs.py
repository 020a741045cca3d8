"""Backends of the store: they only move blobs. :class:`BlobStore` is what each provides;
:class:`LocalBlobStore` is a folder; ``s3://`` URLs open :mod:`refinery.store.s3`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from refinery.core.errors import ConflictError, InputError, StoreError
from refinery.store.files import sha256_bytes
from refinery.store.s3 import S3Options, open_s3

DEFAULT_STORE = "./.refinery/store"


class BlobStore(Protocol):
    """What a backend provides. Keys are ``/``-separated relative paths."""

    url: str

    def get(self, key: str) -> tuple[bytes, str] | None:
        """Bytes and an opaque version tag (ETag), or ``None`` when absent."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if the key does not exist. ``False`` when it already did."""
        ...

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        """Write when the current version is ``etag`` (``None``: must be absent).

        Returns the new tag; raises :class:`ConflictError` when the race was lost.
        """
        ...

    def put(self, key: str, data: bytes) -> None:
        """Unconditional write, for derived files (plans, index pages)."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix``, in no promised order."""
        ...

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """``(key, tag)`` under ``prefix`` from one listing, without reading objects.

        The tag changes whenever the object's content does (S3: the ETag; a folder:
        inode, size and mtime, since every write is a rename of a new file)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove a derived object (index pages); ledger objects are never deleted."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file (or folder) on this machine that holds ``key``, for a backend that is a
        folder (readers link instead of copying); ``None`` for a remote backend."""
        ...


def _tag(st: os.stat_result) -> str:
    return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"


class LocalBlobStore:
    """A folder. Atomic by ``link``/``rename``; CAS under an exclusive ``flock``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"refusing store key {key!r}")
        return self.root / key

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def get(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, sha256_bytes(data)

    def _temp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return Path(tmp)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._temp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        path = self._path(key)
        with self._locked(path):
            current = self.get(key)
            current_tag = current[1] if current else None
            if current_tag != etag:
                raise ConflictError(f"{key}: changed since it was read")
            tmp = self._temp(path, data)
            os.replace(tmp, path)
        return sha256_bytes(data)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._temp(path, data), path)

    def list(self, prefix: str) -> Iterator[str]:
        for key, _tag in self._scan(prefix, stat=False):
            yield key

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        return self._scan(prefix, stat=True)

    def _scan(self, prefix: str, *, stat: bool) -> Iterator[tuple[str, str]]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        rel = base.relative_to(self.root).as_posix()
        start = "" if rel == "." else rel + "/"
        stack = [(str(base), start)]
        while stack:
            path, key_prefix = stack.pop()
            try:
                entries = os.scandir(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{key_prefix}{entry.name}/"))
                    else:
                        tag = _tag(entry.stat(follow_symlinks=False)) if stat else ""
                        yield f"{key_prefix}{entry.name}", tag

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


def open_blobs(url: str, *, s3: S3Options | None = None) -> BlobStore:
    """A backend for ``file://…``, a plain path, or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme == "file" else url)
        if path.exists() and not path.is_dir():
            raise InputError(f"store {url!r} is a file, not a folder")
        return LocalBlobStore(path)
    if parsed.scheme == "s3":
        return open_s3(url, s3 or S3Options())
    raise InputError(
        f"unsupported store URL {url!r} (use file://PATH, a path, or s3://BUCKET/PREFIX)"
    )
