"""The sdist reader: one file out of a ``.tar.gz`` stream, as cheaply as it can be done,
and the one reading of ``[build-system]`` (PEP 517/518) everyone uses.

The planner needs only ``pyproject.toml`` from each sdist it will build. ``tarfile``'s
stream mode works, but its per-block Python overhead doubles the cost of inflating the
archive; here the headers are parsed with slicing and the member data in between is
inflated in large chunks and dropped (zlib releases the GIL, so several sdists inflate
on several cores).
"""

from __future__ import annotations

import io
import itertools
import tomllib
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

BLOCK = 512
CHUNK = 1 << 16
# Setuptools' legacy default (PEP 517) for an sdist without [build-system].
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BUILD_BACKEND = "setuptools.build_meta:__legacy__"
_GZIP = 16 + zlib.MAX_WBITS

_isal: Any = None
try:  # optional: python-isal has wheels for the common build hosts, not for every one
    import isal.isal_zlib

    _isal = isal.isal_zlib
except ImportError:  # pragma: no cover - depends on the host
    pass


class _Inflated:
    """Decompressed bytes of a gzip stream, read forward only."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._z = _decompressor()
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._done = False

    def _more(self) -> bool:
        while not self._done:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                out = self._z.flush()
            else:
                out = self._z.decompress(chunk)
                while self._z.eof and self._z.unused_data:  # concatenated gzip members
                    rest = self._z.unused_data
                    self._z = _decompressor()
                    out += self._z.decompress(rest)
            if out:
                if self._pos >= len(self._buf):
                    self._buf = bytearray(out)
                    self._pos = 0
                else:
                    del self._buf[: self._pos]
                    self._pos = 0
                    self._buf += out
                return True
        return False

    def read(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n and self._more():
            pass
        out = bytes(self._buf[self._pos : self._pos + n])
        self._pos += len(out)
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            available = len(self._buf) - self._pos
            if available <= 0:
                if not self._more():
                    return
                continue
            k = min(n, available)
            self._pos += k
            n -= k


def _decompressor() -> Any:
    """A gzip inflater: ISA-L's (about twice as fast) where installed, else zlib's."""
    if _isal is not None:
        return _isal.decompressobj(_GZIP)
    return zlib.decompressobj(_GZIP)


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a PAX extended header, if any."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            return None
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "replace")
        pos += length
    return None


def members(chunks: Iterable[bytes]) -> Iterator[tuple[str, str, int, MemberData]]:
    """``(name, type, size, stream)`` for each member of a ``.tar.gz``; the caller may
    ``stream.read(size)`` the data of a member before asking for the next one."""
    stream = _Inflated(chunks)
    long_name: str | None = None
    while True:
        header = stream.read(BLOCK)
        if len(header) < BLOCK or header == bytes(BLOCK):
            return
        size = _number(header[124:136])
        kind = chr(header[156]) if header[156] else "0"
        padded = -(-size // BLOCK) * BLOCK
        if kind in ("L", "x"):  # GNU long name / PAX header for the next member
            data = stream.read(padded)[:size]
            long_name = (
                data.rstrip(b"\0").decode("utf-8", "replace") if kind == "L" else _pax_path(data)
            ) or long_name
            continue
        if kind == "g":
            stream.skip(padded)
            continue
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
            if prefix:
                name = f"{prefix}/{name}"
        name, long_name = long_name or name, None
        member = MemberData(stream, size)
        yield name, kind, size, member
        stream.skip(padded - member.taken())


class MemberData:
    """One member's data: readable once, before the next member is asked for."""

    def __init__(self, stream: _Inflated, size: int) -> None:
        self._stream = stream
        self._size = size
        self._taken = 0

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._taken
        n = left if n < 0 else min(n, left)
        data = self._stream.read(n)
        self._taken += len(data)
        return data

    def taken(self) -> int:
        return self._taken


TOP_FILE = "pyproject.toml"


def top_level_file(chunks: Iterable[bytes], wanted: str = TOP_FILE) -> bytes | None:
    """The top-level ``wanted`` file of an sdist (``NAME-VERSION/wanted``), reading as
    little of the stream as possible.

    Archives written by ``tarfile.add`` (setuptools and friends since Python 3.7) and by
    ``git archive`` list each folder's entries in sorted order. Once the top-level names
    seen so far are sorted, include ``PKG-INFO`` and have passed ``wanted``, the file is
    not there: stop instead of inflating a 300 MB sdist to its end. An archive whose
    names are not sorted is read in full."""
    seen: list[str] = []
    for name, kind, _size, data in members(chunks):
        parts = name.split("/")
        if len(parts) < 2 or not parts[1]:
            continue
        top = parts[1]
        if kind in ("0", "7") and len(parts) == 2 and top == wanted:
            return data.read()
        if not seen or seen[-1] != top:
            seen.append(top)
        if (
            top > wanted
            and len(seen) >= 3
            and "PKG-INFO" in seen
            and all(a <= b for a, b in itertools.pairwise(seen))
        ):
            return None
    return None


# --- [build-system] -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BuildSystem:
    """The ``[build-system]`` table of a ``pyproject.toml``, PEP 517 defaults filled in:
    no ``requires`` means setuptools' legacy requirement; ``backend`` is ``""`` when the
    file names none (the frontend then uses setuptools' legacy backend)."""

    requires: tuple[str, ...] = LEGACY_BUILD_REQUIRES
    backend: str = ""
    declared: bool = False  # the file has a ``build-system`` key


def parse_build_system(text: str) -> BuildSystem:
    """``[build-system]`` of the ``pyproject.toml`` text; raises
    :class:`tomllib.TOMLDecodeError` when it is not TOML."""
    doc = tomllib.loads(text)
    if "build-system" not in doc:
        return BuildSystem()
    system = doc["build-system"]
    if not isinstance(system, dict):
        return BuildSystem(declared=True)
    requires = system.get("requires")
    return BuildSystem(
        requires=(
            tuple(str(r) for r in requires) if isinstance(requires, list) else LEGACY_BUILD_REQUIRES
        ),
        backend=str(system.get("build-backend", "")),
        declared=True,
    )


def build_requires(pyproject: bytes | None) -> tuple[str, ...]:
    """``[build-system].requires`` of an sdist's ``pyproject.toml`` bytes (``None``: the
    sdist has none); the legacy default when it has none or does not parse."""
    if pyproject is None:
        return LEGACY_BUILD_REQUIRES
    try:
        return parse_build_system(pyproject.decode("utf-8")).requires
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return LEGACY_BUILD_REQUIRES


def build_requires_from_sdist(stream: IO[bytes], filename: str) -> tuple[str, ...]:
    """``[build-system].requires`` of an sdist read from a stream (legacy default when
    it has none). A ``.tar.gz`` is read only up to its ``pyproject.toml``."""
    if filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(stream.read())) as zf:
            name = next(
                (n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/pyproject.toml")),
                None,
            )
            return build_requires(zf.read(name) if name else None)
    chunks = iter(lambda: stream.read(CHUNK), b"")
    return build_requires(top_level_file(chunks))
