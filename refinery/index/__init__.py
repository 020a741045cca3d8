"""The static pip index (DESIGN §8): PEP 503 HTML, PEP 691 JSON, PEP 658/714 metadata,
derived from the store's project summaries.

:mod:`.render` makes the pages, :mod:`.tree` writes the output folder (atomic,
incremental, with a manifest), :mod:`.build` runs a render (and ``--upload``),
:mod:`.overlay` adds upstream files, :mod:`.serve` serves a folder with content
negotiation. Depends on ``store`` (and ``upstream`` for overlay) only.
"""

from refinery.index.build import Index, IndexResult, build_index
from refinery.index.render import IndexFile, Renderer, project_files
from refinery.index.serve import handler, negotiate

__all__ = [
    "Index",
    "IndexFile",
    "IndexResult",
    "Renderer",
    "build_index",
    "handler",
    "negotiate",
    "project_files",
]
