"""Hint ids and notes for the Hints page: the catalog module when it offers a loader,
else a tolerant read of ``hints/*.yaml`` (ids and notes only; validation is not ours)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _walk(doc: Any) -> Iterable[dict[str, Any]]:
    if isinstance(doc, dict):
        if isinstance(doc.get("id"), str):
            yield doc
        for key in ("hints", "items"):
            yield from _walk(doc.get(key))
    elif isinstance(doc, list):
        for item in doc:
            yield from _walk(item)


def _from_module(directory: Path) -> dict[str, str] | None:
    from .. import hints

    loader = getattr(hints, "load_catalog", None)
    if not callable(loader):
        return None
    try:
        catalog = loader(directory)
    except Exception:  # a broken catalog must not break the status site
        return None
    items = catalog.values() if isinstance(catalog, dict) else getattr(catalog, "hints", catalog)
    out: dict[str, str] = {}
    for hint in items or ():
        hid = getattr(hint, "id", None)
        if isinstance(hid, str):
            out[hid] = str(getattr(hint, "note", "") or "")
    return out


def load_catalog(directory: Path) -> dict[str, str]:
    """``{hint id: note}`` for every hint the catalog in ``directory`` defines."""
    if not directory.is_dir():
        return {}
    found = _from_module(directory)
    if found is not None:
        return found
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe")
    out: dict[str, str] = {}
    for path in sorted(directory.glob("*.y*ml")):
        try:
            doc = yaml.load(path.read_text())
        except (OSError, YAMLError):
            continue
        for hint in _walk(doc):
            out[hint["id"]] = str(hint.get("note", "") or "").strip()
    return out
