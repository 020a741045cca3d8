"""The hint catalog (``hints/*.yaml``). For now: its digest, which keys known failures."""

from __future__ import annotations

import hashlib
from pathlib import Path

DEFAULT_HINTS_DIR = Path("hints")


def catalog_digest(directory: Path = DEFAULT_HINTS_DIR) -> str:
    """sha256 over the catalog files (names and bytes, sorted): a change re-enables builds."""
    h = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(directory.glob("*.yaml")):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
