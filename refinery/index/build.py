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

from refinery.core.errors import InputError, StoreError
from refinery.index.overlay import upstream_files
from refinery.index.render import IndexFile, Rendered, Renderer, project_files
from refinery.index.tree import INDEX_SCHEMA, Manifest, OutputTree, Update, next_manifest
from refinery.store import Store
from refinery.store.provenance import has_provenance
from refinery.store.verify import WheelVerifier, missing_links

if TYPE_CHECKING:
    from refinery.upstream.simple import IndexClient

REMOTE_MANIFEST = "manifest.json"  # below simple/ in the store
EMPTY = "-"  # the remote manifest's digest of a project that left: a valid empty page
VERIFIED = ".verified.json"  # below OUT: the wheels that verified, by version tag
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
        self._verified = WheelVerifier(store, out / VERIFIED)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # compiling the templates costs milliseconds
            self._renderer = Renderer()
        return self._renderer

    def _attested(self, sha256: str, filename: str) -> bool:
        return has_provenance(self.store, sha256, filename)

    def _linkable(self, f: IndexFile) -> bool:
        """Never link a wheel of ours whose bytes (or metadata) do not verify."""
        if f.upstream or f.sha256 is None:
            return True
        meta = f.metadata.removeprefix("sha256=") if f.metadata else None
        return self._verified(f.sha256, f.filename, meta)

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
        self._verified.save()
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
            uploaded=self._upload(update, frozenset(rendered)) if upload else 0,
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
            files = project_files(summary, upstream.get(name, ()), self._attested)
            return self.renderer.project(name, [f for f in files if self._linkable(f)])

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
                    if f.provenance:
                        self.tree.write_provenance(self.store, f.sha256, f.filename)

    # --- upload -----------------------------------------------------------------
    # Safe at every instant, for a reader and after a run killed at any point: the files
    # and their metadata are in the bucket before a page names them (publish puts them
    # before the records; pages list only files that verified when rendered, and a page
    # this run did not render has its files checked for presence); then project pages;
    # then the project list; a project that left the list keeps a valid empty page (a
    # stale list from a concurrent run still resolves); the manifest last. Wheels are
    # never deleted.
    def _remote_pages(self) -> dict[str, str]:
        got = self.store.get_index_file(REMOTE_MANIFEST)
        if got is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                doc = json.loads(got)
                if doc.get("schema") == INDEX_SCHEMA:
                    return dict(doc["pages"])
        return {}

    def _check_files(self, names: list[str]) -> None:
        """Every file the pages of ``names`` link is in the store (wheel and metadata)."""

        def check(name: str) -> None:
            missing = missing_links(
                self.store, f"{name}/index.json", self.tree.read(f"{name}/index.json")
            )
            if missing:
                raise StoreError(f"{self.store.url}: {name}'s page links {missing[0]}, missing")

        list(self._map(check, names))

    def _put_pages(self, names: list[str], pages: dict[str, bytes] | None = None) -> None:
        def put(name: str) -> None:
            for leaf in ("index.json", "index.html"):
                rel = f"{name}/{leaf}"
                data = pages[leaf] if pages is not None else self.tree.read(rel)
                self.store.put_index_file(rel, data)

        list(self._map(put, names) if not self.store.local else map(put, names))

    def _upload(self, update: Update, rendered: frozenset[str]) -> int:
        """Put changed pages into the store's bucket (at ``…/index.html`` keys) in the
        order above; returns how many pages were written."""
        remote = self._remote_pages()
        projects = update.manifest.projects
        todo = [n for n in update.names if remote.get(n) != projects[n][1]]
        self._check_files([n for n in todo if n not in rendered])
        self._put_pages(todo)
        root_digest = hashlib.sha256(self.tree.read("index.json")).hexdigest()
        count = len(todo) * 2
        if remote.get("") != root_digest:
            for leaf in ("index.html", "index.json"):
                self.store.put_index_file(leaf, self.tree.read(leaf))
            count += 2
        gone = sorted(n for n in set(remote) - set(update.names) - {""} if remote[n] != EMPTY)
        for name in gone:
            empty = self.renderer.project(name, [])
            self._put_pages([name], {"index.json": empty.json, "index.html": empty.html})
        pages = {n: projects[n][1] for n in update.names} | dict.fromkeys(gone, EMPTY)
        pages |= {n: EMPTY for n, d in remote.items() if d == EMPTY and n not in pages}
        pages[""] = root_digest
        doc_bytes = json.dumps({"schema": INDEX_SCHEMA, "pages": pages}).encode()
        self.store.put_index_file(REMOTE_MANIFEST, doc_bytes)
        return count + len(gone) * 2


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
