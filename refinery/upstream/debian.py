"""The Debian archive's file index: which package ships a given path.

A root made from ``bookworm`` on a mirror answers "which ``-dev`` package has
``yaml.h``" from that release's ``Contents-<arch>`` index on the same mirror (the
index ``apt-file`` reads). It is fetched once per (mirror, release, arch, digest):

* ``InRelease`` is verified with ``gpgv`` against the Debian archive keyring (what
  mmdebstrap trusted when it made the root) and names the index's SHA-256;
* ``main/Contents-<arch>.gz`` (about 10 MB) is downloaded, checked against that digest
  and turned into a small SQLite table of the paths a build can miss (headers, shared
  and static libraries — by soname too —, pkg-config and CMake files, programs), keyed
  by file name, so a query answers in milliseconds; ``Contents-all``
  (architecture-independent packages: header-only libraries) is fetched the first time
  a query needs it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import urllib3

from refinery.core.errors import NetworkError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SCHEMA = 2
#: Paths a build (or a clean root) can miss; the rest of the Contents index is left out.
_WANTED = re.compile(
    r"(?:^|/)include/"
    r"|\.(?:so|a|pc|cmake)$"
    r"|\.so\.\d[\w.]*$"  # a shared library by its soname (libglib-2.0.so.0)
    r"|^(?:usr/)?s?bin/[^/]+$"
)
_BATCH = 20_000


@dataclass(frozen=True, slots=True)
class ContentsSource:
    """One release's file index: ``mirror`` (``http://deb.debian.org/debian``), the
    ``release`` codename, the ``arch``, and the component."""

    mirror: str
    release: str
    arch: str
    component: str = "main"

    def url(self, name: str) -> str:
        return f"{self.mirror.rstrip('/')}/dists/{self.release}/{name}"

    def index_name(self, arch: str) -> str:
        return f"{self.component}/Contents-{arch}.gz"


@dataclass(frozen=True, slots=True)
class Owner:
    """A path of the index and the packages that ship it (``libyaml-dev``)."""

    path: str
    packages: tuple[str, ...]


def release_digests(text: str) -> dict[str, str]:
    """Name -> SHA-256 from the ``SHA256:`` section of a Release/InRelease file."""
    out: dict[str, str] = {}
    in_sha = False
    for line in text.splitlines():
        if not line.startswith(" "):
            in_sha = line.strip() == "SHA256:"
            continue
        if in_sha:
            parts = line.split()
            if len(parts) == 3:
                out[parts[2]] = parts[0]
    return out


def parse_contents(lines: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """(file name, path, packages) for each wanted line of a Contents index
    (``usr/include/yaml.h   libdevel/libyaml-dev``); packages lose their section."""
    for line in lines:
        path, _sep, where = line.rstrip("\n").rpartition(" ")
        path = path.strip()
        if not path or not _WANTED.search(path):
            continue
        packages = ",".join(p.rpartition("/")[2] for p in where.split(","))
        yield PurePosixPath(path).name, path, packages


class SignedRelease:
    """One release's files on a mirror, trusted through its signed ``InRelease``."""

    def __init__(self, source: ContentsSource, http: urllib3.PoolManager | None = None):
        self.source = source
        self.http = http or urllib3.PoolManager(retries=urllib3.Retry(3, backoff_factor=1))
        self._digests: dict[str, str] | None = None

    @staticmethod
    def get(http: urllib3.PoolManager, url: str, dest: Path) -> None:
        """``url`` streamed into ``dest`` (a failure is a :class:`NetworkError`)."""
        try:
            response = http.request("GET", url, preload_content=False, timeout=120)
        except urllib3.exceptions.HTTPError as exc:
            raise NetworkError(f"GET {url}: {exc}") from exc
        try:
            if response.status != 200:
                raise NetworkError(f"GET {url}: HTTP {response.status}")
            with open(dest, "wb") as out:
                for chunk in response.stream(1 << 20):
                    out.write(chunk)
        finally:
            response.release_conn()

    def digests(self) -> dict[str, str]:
        """The verified ``InRelease``'s SHA-256 list (fetched once per object)."""
        if self._digests is None:
            with tempfile.TemporaryDirectory() as tmp:
                signed = Path(tmp) / "InRelease"
                self.get(self.http, self.source.url("InRelease"), signed)
                self._digests = release_digests(verified_text(signed))
        return self._digests

    def fetch(self, name: str, dest: Path, digest: str) -> None:
        """The release's file ``name`` into ``dest``, checked against ``digest``."""
        self.get(self.http, self.source.url(name), dest)
        _check_digest(dest, digest, name)

    def cached(
        self, name: str, cache: Path, stem: str, suffix: str, make: Callable[[Path, Path], object]
    ) -> Path:
        """``cache/<stem>-<digest>-<suffix>``: what ``make(downloaded, dest)`` made of the
        release's file ``name`` — made once per digest (a new index, a new file)."""
        digest = self.digests().get(name)
        if digest is None:
            raise NetworkError(f"{self.source.url('InRelease')} lists no {name}")
        path = cache / f"{stem}-{digest[:16]}{suffix}"
        if not path.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                downloaded = Path(tmp) / PurePosixPath(name).name
                self.fetch(name, downloaded, digest)
                staging = Path(tmp) / f"made{suffix}"
                make(downloaded, staging)
                os.replace(staging, path)
        return path


class ContentsIndex:
    """Queries over one release's cached file index (see the module docstring)."""

    def __init__(
        self, source: ContentsSource, cache: Path, http: urllib3.PoolManager | None = None
    ):
        self.source = source
        self.cache = cache
        self.release = SignedRelease(source, http)

    def digests(self) -> dict[str, str]:
        return self.release.digests()

    def _database(self, arch: str) -> Path:
        name = self.source.index_name(arch)
        stem = f"{self.source.release}-{arch}"
        return self.release.cached(name, self.cache, stem, f"-v{SCHEMA}.sqlite", build_database)

    # --- queries ---------------------------------------------------------------------
    def owners(self, filename: str, *, arch_all: bool = False) -> tuple[Owner, ...]:
        """Every indexed path named ``filename`` and its packages (the root's arch;
        ``arch_all``: the architecture-independent index instead)."""
        db = self._database("all" if arch_all else self.source.arch)
        return query(db, filename)


def query(db: Path, filename: str) -> tuple[Owner, ...]:
    """The rows of a file-index database for ``filename``."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(
            "SELECT path, packages FROM files WHERE name = ? ORDER BY path", (filename,)
        ).fetchall()
    return tuple(Owner(path, tuple(packages.split(","))) for path, packages in rows)


def build_database(gz: Path, dest: Path) -> int:
    """The wanted lines of a gzipped Contents index as an SQLite table; row count."""
    with sqlite3.connect(dest) as con:
        con.execute("CREATE TABLE files (name TEXT, path TEXT, packages TEXT)")
        count = 0
        with gzip.open(gz, "rt", encoding="utf-8", errors="replace") as text:
            batch: list[tuple[str, str, str]] = []
            for row in parse_contents(text):
                batch.append(row)
                if len(batch) >= _BATCH:
                    con.executemany("INSERT INTO files VALUES (?, ?, ?)", batch)
                    count += len(batch)
                    batch.clear()
            con.executemany("INSERT INTO files VALUES (?, ?, ?)", batch)
            count += len(batch)
        con.execute("CREATE INDEX by_name ON files (name)")
    return count


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_digest(path: Path, expected: str, name: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise NetworkError(f"{name}: SHA-256 {actual} is not the signed {expected}")


def verified_text(signed: Path, keyring: Path = KEYRING) -> str:
    """The text of a clearsigned ``InRelease`` after ``gpgv`` verified it."""
    if not keyring.is_file():
        raise NetworkError(
            f"no Debian archive keyring at {keyring} (apt install debian-archive-keyring)"
        )
    try:
        done = subprocess.run(
            ["gpgv", "--keyring", str(keyring), "--output", "-", str(signed)],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetworkError(f"gpgv could not verify {signed.name}: {exc}") from exc
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise NetworkError(f"{signed.name} failed signature verification: {' '.join(why)}")
    return done.stdout.decode("utf-8", errors="replace")
