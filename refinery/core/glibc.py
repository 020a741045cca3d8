"""Which enterprise distributions on IBM Z a wheel installs on, from its glibc floor.

A manylinux wheel installs where the system glibc is at least the tag's version (PEP
600). :data:`DISTRIBUTIONS` is the data: each release line that runs on s390x and the
glibc it ships (the oldest of the line where service packs differ). Within a family the
releases are listed oldest first, so the releases a wheel installs on are a tail of each
family: "RHEL 8+" says it all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from refinery.core.target import wheel_glibc_floor

Glibc = tuple[int, int]

_SYMBOL_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)*")


@dataclass(frozen=True, slots=True)
class Distribution:
    """One release line: ``family`` (RHEL), ``release`` (8) and its ``glibc`` (2.28)."""

    family: str
    release: str
    glibc: Glibc

    @property
    def name(self) -> str:
        return f"{self.family} {self.release}"


#: Enterprise distributions that install on s390x, oldest release of a family first.
DISTRIBUTIONS: tuple[Distribution, ...] = (
    Distribution("RHEL", "8", (2, 28)),
    Distribution("RHEL", "9", (2, 34)),
    Distribution("SLES", "15 SP1", (2, 26)),  # SP1 and SP2
    Distribution("SLES", "15 SP3", (2, 31)),  # SP3 and later
    Distribution("Ubuntu", "20.04", (2, 31)),
    Distribution("Ubuntu", "22.04", (2, 35)),
    Distribution("Ubuntu", "24.04", (2, 39)),
    Distribution("Debian", "11", (2, 31)),
    Distribution("Debian", "12", (2, 36)),
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(d.family for d in DISTRIBUTIONS))


def glibc_text(version: Glibc) -> str:
    return f"{version[0]}.{version[1]}"


def symbol_glibc(version: str) -> Glibc | None:
    """The glibc of a symbol version (``GLIBC_2.35`` → (2, 35), ``GLIBC_2.2.5`` →
    (2, 2)); ``None`` for ``GLIBC_PRIVATE`` and every other library's versions."""
    m = _SYMBOL_VERSION.fullmatch(version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def installs_on(floor: Glibc) -> tuple[Distribution, ...]:
    """The listed releases whose glibc is at least ``floor``."""
    return tuple(d for d in DISTRIBUTIONS if d.glibc >= floor)


def first_releases(floor: Glibc) -> dict[str, Distribution | None]:
    """Per family, its oldest release a wheel needing ``floor`` installs on (or None)."""
    fits = installs_on(floor)
    return {family: next((d for d in fits if d.family == family), None) for family in FAMILIES}


def installs_on_text(floor: Glibc) -> str:
    """``RHEL 8+, SLES 15 SP3+, Ubuntu 20.04+, Debian 11+ (glibc 2.28+)``; a family it
    installs on no listed release of is named with its newest: ``not on RHEL 9 or
    older``. ASCII only (index pages declare no charset)."""
    first = first_releases(floor)
    yes = [f"{d.name}+" for d in first.values() if d is not None]
    no = [_newest(family) for family, d in first.items() if d is None]
    glibc = f"glibc {glibc_text(floor)}+"
    if not yes:
        return f"none of the listed releases ({glibc}; not on {', '.join(no)})"
    return (
        f"{', '.join(yes)} ({glibc}; not on {', '.join(no)})"
        if no
        else f"{', '.join(yes)} ({glibc})"
    )


def _newest(family: str) -> str:
    newest = [d for d in DISTRIBUTIONS if d.family == family][-1]
    return f"{family} {newest.release} or older"


def wheel_installs_on(filename: str) -> str:
    """What :func:`installs_on_text` says for an s390x manylinux wheel; ``""`` for any
    other file (a pure wheel installs everywhere, an sdist builds where it can)."""
    floor = wheel_glibc_floor(filename)
    return installs_on_text(floor) if floor is not None else ""
