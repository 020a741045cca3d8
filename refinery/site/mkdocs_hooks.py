"""MkDocs hooks of the status site (listed in ``mkdocs.yml``; also injected by
:mod:`refinery.site.build`).

An incremental (``dirty``) build renders only the pages whose Markdown changed, so the
search plugin sees only those. This hook keeps the search index whole: before the build it
reads the previous ``search/search_index.json``; after it, entries of pages that were not
rendered this time (and still exist) are carried over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_state: dict[str, Any] = {"previous": None, "rendered": set(), "dirty": False}

INDEX = Path("search", "search_index.json")


def on_startup(command: str, dirty: bool = False, **_: Any) -> None:
    _state["dirty"] = dirty


def on_pre_build(config: Any) -> None:
    _state["rendered"] = set()
    _state["previous"] = None
    if not _state["dirty"]:
        return
    path = Path(config["site_dir"]) / INDEX
    try:
        _state["previous"] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        _state["previous"] = None


def on_post_page(output: str, page: Any, config: Any) -> str:
    _state["rendered"].add(page.url)
    return output


def on_post_build(config: Any) -> None:
    previous = _state["previous"]
    if not _state["dirty"] or not previous:
        return
    site = Path(config["site_dir"])
    path = site / INDEX
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    rendered: set[str] = _state["rendered"]
    carried = []
    for doc in previous.get("docs", []):
        location = str(doc.get("location", ""))
        page = location.split("#", 1)[0]
        if page in rendered:
            continue
        if (site / (page or "index.html")).exists():
            carried.append(doc)
    current["docs"] = carried + current.get("docs", [])
    path.write_text(json.dumps(current, separators=(",", ":")))


def set_dirty(dirty: bool) -> None:
    """For programmatic builds, where ``on_startup`` does not run."""
    _state["dirty"] = dirty
