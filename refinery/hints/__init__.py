"""The hint catalog (``hints/*.yaml``, DESIGN §5.4): known build failures and their fixes.

- :func:`catalog_digest` keys known failures (the planner's ``skipped_known_failure``):
  any change to the catalog makes earlier failures eligible for a new build.
- :func:`load_catalog` (``loader``) reads the catalog strictly into frozen models.
- ``matcher`` scans a build log (bounded) and ranks matching hints.
- ``advise`` is the build runner's retry callback; ``learn`` writes learned per-package
  entries back with ruamel.yaml round-trip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from refinery.hints.models import (
    Catalog,
    Evidence,
    Hint,
    HintFix,
    Location,
    PackageEntry,
    Remedy,
    Scope,
    fix_lines,
    fix_summary,
)

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_HINTS_DIR = Path("hints")

__all__ = [
    "DEFAULT_HINTS_DIR",
    "Catalog",
    "Evidence",
    "Hint",
    "HintFix",
    "Location",
    "PackageEntry",
    "Remedy",
    "Scope",
    "catalog_digest",
    "fix_lines",
    "fix_summary",
    "load_catalog",
]


def catalog_digest(directory: Path = DEFAULT_HINTS_DIR) -> str:
    """sha256 over the catalog files and the patches beside them (names and bytes,
    sorted): a change re-enables builds."""
    h = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(directory.glob("*.yaml")):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        for path in sorted((directory / "patches").glob("*")):
            if path.is_file():
                h.update(f"patches/{path.name}".encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def load_catalog(
    directory: Path = DEFAULT_HINTS_DIR, *, display: Callable[[Path], str] | None = None
) -> Catalog:
    """Load and validate the catalog; raises ``loader.CatalogError`` naming file:line."""
    from refinery.hints.loader import load_catalog as load

    return load(directory, display=display)
