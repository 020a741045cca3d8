"""The dpkg database of a build root, read from its files (never from the host's dpkg).

A root may be layered (an overlayfs upper directory over the cached root): the
``status`` file of the topmost layer that has one is the whole truth, and the file lists
(``info/<package>[:<arch>].list``) merge top first, an overlay whiteout hiding a lower
entry. Reading files works for every root the host can see (the rootfs and cross
backends), without running anything under emulation.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info"


@dataclass(frozen=True, slots=True)
class DebPackage:
    """An installed Debian package: name, version, architecture (and its source)."""

    name: str
    version: str
    arch: str
    source: str = ""


def parse_status(text: str) -> dict[str, DebPackage]:
    """Installed packages of a dpkg ``status`` file, by name (``Status: … installed``)."""
    out: dict[str, DebPackage] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue  # a continuation line (Description, Conffiles)
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        name = fields.get("Package")
        if not name or not fields.get("Status", "").endswith(" installed"):
            continue
        source = fields.get("Source", "").split(" ")[0]
        out[name] = DebPackage(
            name, fields.get("Version", ""), fields.get("Architecture", ""), source
        )
    return out


def _whiteout(path: Path) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _list_files(layers: Sequence[Path]) -> dict[str, Path]:
    """``<package>[:<arch>].list`` name → the topmost layer's file."""
    seen: dict[str, Path] = {}
    for layer in layers:
        folder = layer / INFO
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if not entry.name.endswith(".list") or entry.name in seen:
                continue
            path = Path(entry.path)
            seen[entry.name] = path
    return {name: path for name, path in seen.items() if not _whiteout(path)}


def path_variants(path: str) -> tuple[str, ...]:
    """``path`` and its other spelling on a merged-/usr root (``/lib/x`` ~ ``/usr/lib/x``)."""
    for short in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(short):
            return (path, "/usr" + path)
        if path.startswith("/usr" + short):
            return (path, path[len("/usr") :])
    return (path,)


class PackageDb:
    """What a root's dpkg database says: installed packages and who owns which file."""

    def __init__(self, packages: Mapping[str, DebPackage], lists: Mapping[str, Path]) -> None:
        self.packages = dict(packages)
        self._lists = dict(lists)

    @classmethod
    def read(cls, layers: Sequence[Path]) -> PackageDb | None:
        """The database of the root made of ``layers`` (top first); None: no dpkg here."""
        for layer in layers:
            status = layer / STATUS
            if status.is_file():
                text = status.read_text(encoding="utf-8", errors="replace")
                return cls(parse_status(text), _list_files(layers))
        return None

    def version(self, name: str) -> DebPackage | None:
        return self.packages.get(name)

    def owners(self, paths: Iterable[str]) -> dict[str, DebPackage]:
        """Root paths (``/usr/lib/…``) → the installed package whose file list names
        them (either spelling of a merged-/usr path)."""
        wanted: dict[str, str] = {}
        for path in paths:
            for variant in path_variants(path):
                wanted.setdefault(variant, path)
        found: dict[str, DebPackage] = {}
        for list_name, file in sorted(self._lists.items()):
            name = list_name.removesuffix(".list").split(":")[0]
            package = self.packages.get(name)
            if package is None:
                continue
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                asked = wanted.get(line)
                if asked is not None and asked not in found:
                    found[asked] = package
        return found
