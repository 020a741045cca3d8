"""Hint ids, notes and fixes for the Hints page: the catalog module's loader when it
loads, else a tolerant read of ``hints/*.yaml`` (validation is ``refinery hints check``'s
job; a broken catalog must not break the status site)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    note: str = ""
    fix: str = ""  # one line for people: "apt: zlib1g-dev · dnf: zlib-devel · env: X=1"


def fix_summary(fix: Any) -> str:
    """A hint's fix in one line, from the catalog model or from raw YAML."""
    from refinery.hints.models import HintFix
    from refinery.hints.models import fix_summary as one_line

    return one_line(fix if isinstance(fix, HintFix) else HintFix.lenient(fix))


def _walk(doc: Any) -> Iterable[dict[str, Any]]:
    if isinstance(doc, dict):
        if isinstance(doc.get("id"), str):
            yield doc
        for key in ("hints", "items"):
            yield from _walk(doc.get(key))
    elif isinstance(doc, list):
        for item in doc:
            yield from _walk(item)


def _from_module(directory: Path) -> dict[str, CatalogEntry] | None:
    from refinery import hints

    loader = getattr(hints, "load_catalog", None)
    if not callable(loader):
        return None
    try:
        catalog = loader(directory)
    except Exception:  # a broken catalog must not break the status site
        return None
    items = catalog.values() if isinstance(catalog, dict) else getattr(catalog, "hints", catalog)
    out: dict[str, CatalogEntry] = {}
    for hint in items or ():
        hid = getattr(hint, "id", None)
        if isinstance(hid, str):
            note = str(getattr(hint, "note", "") or "")
            out[hid] = CatalogEntry(note, fix_summary(getattr(hint, "fix", None)))
    return out


def load_catalog(directory: Path) -> dict[str, CatalogEntry]:
    """Every hint the catalog in ``directory`` defines, by id."""
    if not directory.is_dir():
        return {}
    found = _from_module(directory)
    if found is not None:
        return found
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe")
    out: dict[str, CatalogEntry] = {}
    for path in sorted(directory.glob("*.y*ml")):
        try:
            doc = yaml.load(path.read_text())
        except (OSError, YAMLError):
            continue
        for hint in _walk(doc):
            note = str(hint.get("note", "") or "").strip()
            out[hint["id"]] = CatalogEntry(note, fix_summary(hint.get("fix") or {}))
    return out
