"""What the store reads from content: sha256 digests and a wheel's core metadata."""

from __future__ import annotations

import hashlib
import zipfile
from email.parser import BytesHeaderParser
from pathlib import Path

from refinery.core.errors import InputError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_metadata(path: Path) -> bytes:
    """The ``.dist-info/METADATA`` of a wheel (PEP 658 serves it beside the wheel)."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return zf.read(info)
    raise InputError("wheel has no .dist-info/METADATA", path=str(path))


def metadata_requires_python(metadata: bytes) -> str | None:
    """The ``Requires-Python`` header of core metadata, stripped; ``None`` when absent."""
    value = BytesHeaderParser().parsebytes(metadata).get("Requires-Python")
    return str(value).strip() if value else None
