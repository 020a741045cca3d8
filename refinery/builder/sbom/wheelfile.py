"""Put an SBOM into a wheel's ``.dist-info/sboms/`` (PEP 770) and read SBOMs back.

The wheel is rewritten member by member (same order, compression and dates); ``RECORD``
gets the new file's hash and size, and loses the rows of files taken out (auditwheel's
own ``auditwheel.cdx.json``, whose answers come from the host, not the build root).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SBOMS = "sboms"
AUDITWHEEL_SBOM = "auditwheel.cdx.json"


def record_hash(data: bytes) -> str:
    """``sha256=<urlsafe base64, no padding>`` as RECORD spells it."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def dist_info(names: Sequence[str]) -> str:
    """The wheel's one top-level ``*.dist-info`` folder."""
    found = sorted({n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")})
    if len(found) != 1:
        raise ValueError(f"want exactly one .dist-info folder, found {found}")
    return found[0]


def sbom_names(names: Sequence[str]) -> list[str]:
    """The SBOM files of a wheel (``<dist-info>/sboms/*``)."""
    info = dist_info(names)
    return sorted(n for n in names if n.startswith(f"{info}/{SBOMS}/") and not n.endswith("/"))


def _record(old: bytes, members: dict[str, bytes], record: str) -> bytes:
    """RECORD rows for ``members`` (kept rows stay as they were, new ones get a hash)."""
    rows: dict[str, list[str]] = {}
    for row in csv.reader(io.StringIO(old.decode())):
        if row and row[0] in members:
            rows[row[0]] = row
    for name, data in members.items():
        if name not in rows:
            rows[name] = [name, record_hash(data), str(len(data))]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows.values():
        writer.writerow(row)
    writer.writerow([record, "", ""])
    return out.getvalue().encode()


def add_sbom(wheel: Path, name: str, doc: dict[str, Any], drop: Sequence[str] = ()) -> str:
    """Write ``doc`` as ``<dist-info>/sboms/<name>`` into ``wheel`` (in place), taking
    out the SBOM files named in ``drop``; returns the new member's path."""
    data = (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()
    tmp = wheel.with_name(f".{wheel.name}.sbom")
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        info_dir = dist_info([i.filename for i in infos])
        record = f"{info_dir}/RECORD"
        target = f"{info_dir}/{SBOMS}/{name}"
        gone = {f"{info_dir}/{SBOMS}/{d}" for d in drop} | {target, record}
        kept = [i for i in infos if i.filename not in gone]
        members = {i.filename: zin.read(i) for i in kept if not i.is_dir()}
        old_record = zin.read(record)
        stamp = next((i.date_time for i in infos if i.filename == record), (1980, 1, 1, 0, 0, 0))
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for info in kept:
                zout.writestr(info, b"" if info.is_dir() else members[info.filename])
            members[target] = data
            new = zipfile.ZipInfo(target, date_time=stamp)
            new.compress_type = zipfile.ZIP_DEFLATED
            new.external_attr = 0o644 << 16
            zout.writestr(new, data)
            rec = zipfile.ZipInfo(record, date_time=stamp)
            rec.compress_type = zipfile.ZIP_DEFLATED
            rec.external_attr = 0o644 << 16
            zout.writestr(rec, _record(old_record, members, record))
    os.replace(tmp, wheel)
    return target


def read_sboms(wheel: Path) -> dict[str, dict[str, Any]]:
    """Every JSON SBOM in ``wheel``'s ``sboms/`` folder, by member path."""
    out: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(wheel) as zf:
        for member in sbom_names(zf.namelist()):
            if member.endswith(".json"):
                out[member] = json.loads(zf.read(member))
    return out
