"""``refinery index``: the static pip index, derived from the store only — never from a
list that can drift:

* ``--full`` re-derives each project's summary from the build records (repairing any that
  disagree, :meth:`~refinery.store.Store.repair_summaries`) and renders a new tree;
* the default (incremental) run lists the summaries with their change tags in one
  listing, compares them with the manifest of the previous run, and re-renders only the
  projects whose summary changed. The store refreshes a project's summary after every
  record write, so this sees every change without reading 100,000 records.

Pages link to the wheels by their place in the store (``../../wheels/<sha256>/<file>``,
the PEP 658 ``.metadata`` file beside each), so ``--upload`` only has to put the pages
into the bucket (at ``…/index.html`` / ``…/index.json`` keys).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from refinery.core.errors import InputError
from refinery.index.overlay import upstream_files
from refinery.index.render import IndexFile, Rendered, Renderer, project_files
from refinery.index.tree import INDEX_SCHEMA, Manifest, OutputTree, Update, next_manifest
from refinery.store import Store

if TYPE_CHECKING:
    from refinery.upstream.simple import IndexClient

REMOTE_MANIFEST = "manifest.json"  # below simple/ in the store
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class IndexResult:
    out: str
    full: bool
    projects: int
    files: int
    rendered: tuple[str, ...]
    removed: tuple[str, ...]
    repaired: tuple[str, ...]  # summaries a full run found out of line with the records
    uploaded: int
    seconds: float
    schema: int = INDEX_SCHEMA

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        lists = {k: list(out[k]) for k in ("rendered", "removed", "repaired")}
        return {"schema": out.pop("schema"), **out, **lists, "seconds": round(self.seconds, 4)}


class Index:
    """Render the store's index into ``out`` (and optionally upload it)."""

    def __init__(
        self,
        store: Store,
        out: Path,
        *,
        overlay: IndexClient | None = None,
        workers: int | None = None,
    ) -> None:
        self.store = store
        self.out = out
        self.overlay = overlay
        self.workers = workers or (1 if store.local else 32)
        self._renderer: Renderer | None = None
        self.tree = OutputTree(out, self._root_pages)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # compiling the templates costs milliseconds
            self._renderer = Renderer()
        return self._renderer

    def _root_pages(self, names: list[str]) -> tuple[bytes, bytes]:
        return self.renderer.root(names)

    # --- public -----------------------------------------------------------------
    def build(self, *, full: bool = False, upload: bool = False) -> IndexResult:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = self.tree.load_manifest(self.store.url, self.overlay is not None)
        current = self.tree.current_generation()
        full = full or manifest is None or current is None
        repaired = self.store.repair_summaries(self._map) if full else []
        tags = dict(self.store.summaries())
        old = manifest.projects if manifest is not None and not full else {}
        rendered = self._render([n for n in sorted(tags) if old.get(n, [None])[0] != tags[n]])
        self._expose_wheels(rendered.values())
        update = next_manifest(
            Manifest(self.store.url, self.overlay is not None), old, tags, rendered
        )
        if current is None or full:
            self.tree.switch_generation(rendered, update.names)
        else:
            self.tree.update_generation(current, update, rendered)
        if full or rendered or update.removed or update.manifest.projects != old:
            self.tree.save_manifest(update.manifest)
        return IndexResult(
            out=str(self.out),
            full=full,
            projects=len(update.names),
            files=update.manifest.files,
            rendered=tuple(update.written),
            removed=tuple(update.removed),
            repaired=tuple(repaired),
            uploaded=self._upload(update) if upload else 0,
            seconds=time.perf_counter() - started,
        )

    # --- deriving ---------------------------------------------------------------
    def _map(self, fn: Callable[[_T], _R], items: list[_T]) -> Iterator[_R]:
        if self.workers <= 1 or len(items) < 2:
            return map(fn, items)
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            return iter(list(pool.map(fn, items)))
        finally:
            pool.shutdown()

    def _render(self, names: list[str]) -> dict[str, Rendered]:
        upstream: dict[str, list[IndexFile]] = {}
        if self.overlay is not None and names:
            upstream = upstream_files(self.overlay, names)

        def render(name: str) -> Rendered:
            summary = self.store.get_summary(name)
            return self.renderer.project(name, project_files(summary, upstream.get(name, ())))

        return dict(zip(names, self._map(render, names), strict=True))

    def _expose_wheels(self, pages: Iterable[Rendered]) -> None:
        """Make ``OUT/wheels`` hold what the pages link to: a link to a local store's
        wheels, else copies of the listed wheels and their metadata."""
        folder = self.store.wheels_folder()
        if folder is not None:
            self.tree.link_wheels(folder)
            return
        self.tree.unlink_wheels()
        for page in pages:
            for f in page.files:
                if not f.upstream and f.sha256 is not None:
                    self.store.export_wheel(f.sha256, f.filename, self.out)

    # --- upload -----------------------------------------------------------------
    def _upload(self, update: Update) -> int:
        """Put changed pages into the store's bucket: projects, then the list, then
        deletions; the remote manifest last. Pages sit at ``…/index.html`` keys."""
        remote: dict[str, str] = {}
        got = self.store.get_index_file(REMOTE_MANIFEST)
        if got is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                doc = json.loads(got)
                if doc.get("schema") == INDEX_SCHEMA:
                    remote = dict(doc["pages"])
        projects = update.manifest.projects
        todo = [n for n in update.names if remote.get(n) != projects[n][1]]

        def put(name: str) -> None:
            for leaf in ("index.html", "index.json"):
                rel = f"{name}/{leaf}"
                self.store.put_index_file(rel, self.tree.read(rel))

        list(self._map(put, todo) if not self.store.local else map(put, todo))
        root_digest = hashlib.sha256(self.tree.read("index.json")).hexdigest()
        count = len(todo) * 2
        if remote.get("") != root_digest:
            for leaf in ("index.html", "index.json"):
                self.store.put_index_file(leaf, self.tree.read(leaf))
            count += 2
        for name in sorted(set(remote) - set(update.names) - {""}):
            for leaf in ("index.html", "index.json"):
                self.store.delete_index_file(f"{name}/{leaf}")
        pages = {n: projects[n][1] for n in update.names}
        pages[""] = root_digest
        doc_bytes = json.dumps({"schema": INDEX_SCHEMA, "pages": pages}).encode()
        self.store.put_index_file(REMOTE_MANIFEST, doc_bytes)
        return count


def build_index(
    store: Store,
    out: Path,
    *,
    full: bool = False,
    upload: bool = False,
    overlay: IndexClient | None = None,
) -> IndexResult:
    """Render ``store``'s index into ``out``; ``overlay``: also list that index's files."""
    if out.exists() and not out.is_dir():
        raise InputError("not a folder", path=str(out))
    return Index(store, out, overlay=overlay).build(full=full, upload=upload)
