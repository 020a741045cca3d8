"""The one cache root: every cache the refinery keeps lives below one folder, and only
this object names the folders (fromager's ``WorkContext`` owns every path the same way).

The CLI makes one from ``--cache-dir`` / ``REFINERY_CACHE`` / ``$XDG_CACHE_HOME`` and
hands it to every stage; no stage finds a cache folder by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CacheRoot:
    """Folders below :attr:`root`, one per cache."""

    root: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], home: Path) -> CacheRoot:
        """``REFINERY_CACHE``, else ``$XDG_CACHE_HOME/refinery``, else ``~/.cache/refinery``
        (the CLI calls this once, with ``os.environ``)."""
        if environ.get("REFINERY_CACHE"):
            return cls(Path(environ["REFINERY_CACHE"]))
        base = environ.get("XDG_CACHE_HOME") or str(home / ".cache")
        return cls(Path(base) / "refinery")

    @property
    def index(self) -> Path:
        """Simple-API pages and sdist build requirements, per index URL."""
        return self.root / "index"

    @property
    def resolutions(self) -> Path:
        """uv resolutions, by input digest."""
        return self.root / "resolutions"

    @property
    def roots(self) -> Path:
        """Build root tarballs (and their unpacked lower layers), by package-list key."""
        return self.root / "roots"

    @property
    def cross(self) -> Path:
        """Cross toolchains (crossenv, sysroot wrappers, cross files), by root and
        toolchain key."""
        return self.root / "cross"

    @property
    def distro(self) -> Path:
        """Distribution file indexes (Debian's Contents as SQLite), by release and digest."""
        return self.root / "distro"

    @property
    def tools(self) -> Path:
        """Build frontends and uv for the target architecture."""
        return self.root / "tools"

    @property
    def pip(self) -> Path:
        """pip/uv download cache shared (read-only or per build) with the build roots."""
        return self.root / "pip-cache"

    @property
    def packs(self) -> Path:
        """Library packs (built with zig or unpacked from wheels), by identity, and their
        pinned source archives."""
        return self.root / "packs"
