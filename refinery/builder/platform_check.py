"""The target is a promise: a repaired wheel must install on the node's target platform.

After ``auditwheel repair`` the wheel carries the manylinux tag its code needs. When no
tag of it installs on the target (:func:`refinery.core.target.platform_fits`, the rule
the planner's ``reused`` decision uses for PyPI's wheels too) — or when one of its ELF
files needs a newer glibc than the target has — the attempt fails and says why: which
``GLIBC_x.y`` from which library, for which symbol, in which file.

The symbol versions are read from each ELF's ``.gnu.version_r`` (what it needs from each
library) and ``.gnu.version`` (which version each undefined dynamic symbol binds to)
with pyelftools, a dependency of auditwheel; big-endian s390x objects read the same.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection
from elftools.elf.sections import SymbolTableSection

from refinery.builder.artifacts import elf_members
from refinery.builder.outcome import AttemptLog, PhaseFailed
from refinery.core.glibc import Glibc, glibc_text, symbol_glibc, wheel_installs_on
from refinery.core.target import glibc_floor, platform_fits, wheel_platforms

_HIDDEN = 0x8000  # versym bit: the version is hidden, the index is the low 15 bits
_SHOWN_SYMBOLS = 3
_TOO_NEW = "glibc symbol version newer than the target"


@dataclass(frozen=True, slots=True)
class VersionNeed:
    """One symbol version an ELF file needs: ``GLIBC_2.35`` of ``libc.so.6``, for the
    undefined dynamic ``symbols`` bound to it (empty when none is: a version can be
    needed by the version table alone)."""

    version: str
    library: str
    symbols: tuple[str, ...] = ()

    @property
    def glibc(self) -> Glibc | None:
        return symbol_glibc(self.version)


def version_needs(data: bytes) -> tuple[VersionNeed, ...]:
    """The symbol versions an ELF file needs, sorted; ``()`` for a file without
    versioned dependencies or one that is not a readable ELF file."""
    try:
        elf = ELFFile(io.BytesIO(data))
        versions = _needed_versions(elf)
        bound = _bound_symbols(elf, versions) if versions else {}
    except (ELFError, ValueError, KeyError):
        return ()
    needs = [
        VersionNeed(version, library, tuple(sorted(bound.get(index, ()))))
        for index, (library, version) in versions.items()
    ]
    return tuple(sorted(needs, key=lambda n: (n.library, _version_key(n.version))))


def _version_key(version: str) -> tuple[str, tuple[int, ...]]:
    """``GLIBC_2.4`` before ``GLIBC_2.34``: the name, then the numbers as numbers."""
    name, _sep, numbers = version.rpartition("_")
    return name, tuple(int(n) for n in re.findall(r"\d+", numbers))


def _needed_versions(elf: ELFFile) -> dict[int, tuple[str, str]]:
    """Version index → (library, version) from ``.gnu.version_r``."""
    out: dict[int, tuple[str, str]] = {}
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        for verneed, auxiliaries in section.iter_versions():
            for aux in auxiliaries:
                out[int(aux["vna_other"]) & ~_HIDDEN] = (str(verneed.name), str(aux.name))
    return out


def _bound_symbols(elf: ELFFile, versions: Mapping[int, tuple[str, str]]) -> dict[int, set[str]]:
    """Version index → the undefined dynamic symbols bound to it (``.gnu.version``)."""
    dynsym = next((s for s in elf.iter_sections() if s.name == ".dynsym"), None)
    versym = next((s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection)), None)
    out: dict[int, set[str]] = {}
    if not isinstance(dynsym, SymbolTableSection) or versym is None:
        return out
    for i, symbol in enumerate(dynsym.iter_symbols()):
        if not symbol.name or symbol["st_shndx"] != "SHN_UNDEF":
            continue
        ndx = versym.get_symbol(i)["ndx"]  # "VER_NDX_LOCAL"/"VER_NDX_GLOBAL" for 0/1
        if isinstance(ndx, int) and ndx & ~_HIDDEN in versions:
            out.setdefault(ndx & ~_HIDDEN, set()).add(symbol.name)
    return out


@dataclass(frozen=True, slots=True)
class FileNeeds:
    """The symbol versions one ELF file of the wheel needs (``path`` inside the wheel)."""

    path: str
    needs: tuple[VersionNeed, ...]


def wheel_needs(wheel: Path) -> tuple[FileNeeds, ...]:
    """Every ELF file in the wheel (extension modules and grafted libraries) with its
    versioned needs."""
    out: list[FileNeeds] = []
    for name, data in elf_members(wheel):
        needs = version_needs(data)
        if needs:
            out.append(FileNeeds(name, needs))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Culprit:
    """A glibc symbol version above what the target has, and who needs it."""

    glibc: Glibc
    need: VersionNeed
    path: str

    def text(self) -> str:
        shown = self.need.symbols[:_SHOWN_SYMBOLS]
        more = len(self.need.symbols) - len(shown)
        symbols = ", ".join(f"`{s}`" for s in shown) + (f" (+{more})" if more else "")
        used = f" {symbols}" if symbols else ""
        return f"{self.need.version} from {self.need.library}{used} in {self.path}"


@dataclass(frozen=True, slots=True)
class PlatformReport:
    """What the repaired wheel promises (its platform tags) against the node's target,
    and the glibc symbol versions behind it."""

    wheel: str
    target: str
    platforms: tuple[str, ...]
    files: tuple[FileNeeds, ...]

    @property
    def tag_fits(self) -> bool:
        return any(platform_fits(p, self.target) for p in self.platforms)

    @property
    def best_tag(self) -> str:
        """The wheel's platform tag with the oldest glibc (what pip on the target needs)."""
        floors = [
            (f, not p.startswith("manylinux_"), p)  # PEP 600 names before legacy aliases
            for p in self.platforms
            if (f := glibc_floor(p)) is not None
        ]
        return min(floors)[2] if floors else ", ".join(self.platforms)

    def culprits(self) -> list[Culprit]:
        """Every glibc symbol version any file needs, newest (and most used) first."""
        found = [
            Culprit(g, need, fn.path)
            for fn in self.files
            for need in fn.needs
            if (g := need.glibc) is not None
        ]
        return sorted(found, key=lambda c: (c.glibc, len(c.need.symbols)), reverse=True)

    def highest(self) -> Culprit | None:
        """The newest glibc symbol version any file needs."""
        found = self.culprits()
        return found[0] if found else None

    def over(self) -> list[Culprit]:
        """Glibc symbol versions newer than the target's glibc, newest first."""
        floor = glibc_floor(self.target)
        assert floor is not None, self.target
        return [c for c in self.culprits() if c.glibc > floor]

    @property
    def ok(self) -> bool:
        return self.tag_fits and not self.over()

    def reason(self) -> str:
        """Why the wheel breaks the promise, in one sentence."""
        over = self.over()
        tag = f"target {self.target}, wheel tagged {self.best_tag}"
        if not over:
            return f"the wheel does not install on its target: {tag}"
        worst = over[0]
        others = sum(len(c.need.symbols) or 1 for c in over[1:])
        rest = f" ({others} more symbol(s) newer than the target's glibc)" if others else ""
        return f"needs glibc {glibc_text(worst.glibc)}: {worst.text()}{rest}; {tag}"

    def summary(self) -> str:
        """One line for the log of a wheel that keeps the promise."""
        top = self.highest()
        newest = f"; newest glibc symbol {top.text()}" if top is not None else ""
        return f"platform: {self.best_tag} installs on target {self.target}{newest}"


def inspect_platform(wheel: Path, target: str) -> PlatformReport:
    """The repaired wheel's platform tags and glibc needs against ``target``."""
    return PlatformReport(wheel.name, target, wheel_platforms(wheel.name), wheel_needs(wheel))


def explain(report: PlatformReport) -> Iterable[str]:
    """Log lines: each glibc version newer than the target, and who needs it."""
    for culprit in report.over():
        yield f"error: {_TOO_NEW} {report.target}: {culprit.text()}"
    installs = wheel_installs_on(report.wheel)
    if installs:
        yield f"{report.wheel} installs on {installs}"


def enforce_target(wheel: Path, target: str, attempt: AttemptLog) -> PlatformReport:
    """Fail the attempt (:class:`PhaseFailed`) when the repaired ``wheel`` does not
    install on ``target``; log what it needs either way."""
    report = inspect_platform(wheel, target)
    lines = list(explain(report))
    for line in lines:
        attempt.note(line)
    if not report.ok:
        too_new = [line for line in lines if _TOO_NEW in line]
        raise PhaseFailed(report.reason(), lines=too_new, verdict=True)
    attempt.note(report.summary())
    return report
