"""Serving an index folder with PEP 691 content negotiation (``refinery serve OUT``):
``Accept: application/vnd.pypi.simple.v1+json`` gets ``index.json``; anything else a
client accepts gets HTML. A plain static server serves the HTML, which every client reads."""

from __future__ import annotations

import contextlib
import io
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from refinery.core.vocab import SIMPLE_HTML, SIMPLE_JSON


def negotiate(accept: str) -> str | None:
    """PEP 691: pick JSON, versioned HTML or text/html by the client's q-values."""
    if not accept.strip():
        return "text/html"
    offers = {SIMPLE_JSON: 3, SIMPLE_HTML: 2, "text/html": 1}
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        fields_ = [p.strip() for p in part.split(";")]
        media = fields_[0].lower()
        q = 1.0
        for param in fields_[1:]:
            if param.startswith("q="):
                with contextlib.suppress(ValueError):
                    q = float(param[2:])
        candidates = list(offers) if media in ("*/*", "application/*", "text/*") else [media]
        for cand in candidates:
            if cand in offers and q > 0:
                key = (q, offers[cand], cand)
                if best is None or key > best:
                    best = key
    return best[2] if best else None


class Handler(SimpleHTTPRequestHandler):
    """Static files; a folder URL ending in ``/`` is negotiated (``Vary: Accept``)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if path.is_dir() and self.path.split("?")[0].endswith("/"):
            choice = negotiate(self.headers.get("Accept", ""))
            if choice is None:
                self.send_error(406, "Not Acceptable")
                return None
            leaf = path / ("index.json" if choice == SIMPLE_JSON else "index.html")
            if leaf.is_file():
                data = leaf.read_bytes()
                self.send_response(200)
                ctype = choice if choice != "text/html" else "text/html; charset=utf-8"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Vary", "Accept")
                self.end_headers()
                return io.BytesIO(data)
        return super().send_head()


def handler(directory: Path) -> Any:
    """An ``http.server`` handler for ``OUT`` with PEP 691 content negotiation."""
    return partial(Handler, directory=str(directory))
