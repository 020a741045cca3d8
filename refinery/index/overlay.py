"""Overlay mode: PyPI's own files listed on our project pages too, so that ``uv``'s
first-index rule never hides upstream versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from refinery.index.render import IndexFile

if TYPE_CHECKING:
    from refinery.upstream.simple import IndexClient


def upstream_files(client: IndexClient, names: list[str]) -> dict[str, list[IndexFile]]:
    """PyPI's own files for ``names`` (overlay mode), absolute URLs."""
    out: dict[str, list[IndexFile]] = {}
    for name, project in client.projects(names).items():
        if project is None:
            continue
        out[name] = [
            IndexFile(
                filename=f.filename,
                url=f.url,
                version=f.version,
                sha256=f.sha256,
                size=f.size,
                requires_python=f.requires_python,
                yanked="" if f.yanked else None,
                metadata="true" if f.metadata else None,
                upstream=True,
            )
            for f in project.files
        ]
    return out
