"""MkDocs hooks of the status site (listed in ``mkdocs.yml``; also injected by
:mod:`refinery.site.build`).

Pre-rendered pages
    Generated package pages (10,000 and more) are written as HTML with front matter
    ``refinery: html``. For those, Markdown conversion — the larger part of MkDocs' time
    per page — is skipped: the page body is used as it is, its table of contents is read
    from its ``<h2>``/``<h3>`` headings, and instead of parsing the page for the search
    index it gets one entry (title + ``summary`` from the front matter).

Incremental builds
    A ``dirty`` build renders only the pages whose Markdown changed, so the search plugin
    sees only those. Before the build the previous ``search/search_index.json`` is read;
    after it, entries of pages not rendered this time (and still present) are carried over.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

_state: dict[str, Any] = {"previous": None, "rendered": set(), "dirty": False, "light": []}

INDEX = Path("search", "search_index.json")
_HEADING = re.compile(r'<h([23]) id="([^"]+)">(.*?)(?:<a class="headerlink"[^>]*>[^<]*</a>)?</h\1>')
_TAGS = re.compile(r"<[^>]+>")


def on_startup(command: str, dirty: bool = False, **_: Any) -> None:
    _state["dirty"] = dirty


def on_pre_build(config: Any) -> None:
    _state["rendered"] = set()
    _state["light"] = []
    _state["previous"] = None
    if not _state["dirty"]:
        return
    path = Path(config["site_dir"]) / INDEX
    try:
        _state["previous"] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        _state["previous"] = None


def _toc(body: str) -> Any:
    from mkdocs.structure.toc import get_toc

    tokens: list[dict[str, Any]] = []
    for level, anchor, inner in _HEADING.findall(body):
        name = html.unescape(_TAGS.sub("", inner))
        token = {"level": int(level), "id": anchor, "name": name, "html": inner, "children": []}
        if level == "3" and tokens:
            tokens[-1]["children"].append(token)
        else:
            tokens.append(token)
    return get_toc(tokens)  # type: ignore[arg-type]


def _prerendered_render(page: Any) -> Any:
    def render(config: Any, files: Any) -> None:
        page.content = page.markdown
        page.toc = _toc(page.markdown)

    return render


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.meta.get("refinery") == "html":
        page.render = _prerendered_render(page)
    return markdown


def on_page_context(context: Any, page: Any, config: Any, nav: Any) -> Any:
    if page.meta.get("refinery") == "html" and page.meta.get("summary"):
        _state["light"].append(
            {"location": page.url, "title": page.title or "", "text": page.meta.get("summary", "")}
        )
    return context


def on_post_page(output: str, page: Any, config: Any) -> str:
    _state["rendered"].add(page.url)
    return output


def on_post_build(config: Any) -> None:
    site = Path(config["site_dir"])
    path = site / INDEX
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    docs: list[dict[str, Any]] = []
    previous = _state["previous"]
    if _state["dirty"] and previous:
        rendered: set[str] = _state["rendered"]
        for doc in previous.get("docs", []):
            page = str(doc.get("location", "")).split("#", 1)[0]
            if page not in rendered and (site / (page or "index.html")).exists():
                docs.append(doc)
    current["docs"] = docs + current.get("docs", []) + _state["light"]
    path.write_text(json.dumps(current, separators=(",", ":")))
