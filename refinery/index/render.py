"""The static pip index: PEP 503 HTML, PEP 691 JSON, PEP 658/714 metadata.

Derived from the store only — never from a list that can drift:

* ``--full`` reads every build record, re-derives each project's summary
  (``projects/<name>.json``, repairing any that disagree) and renders a new tree;
* the default (incremental) run lists the summaries with their change tags in one
  listing, compares them with the manifest of the previous run, and re-renders only the
  projects whose summary changed. The ledger refreshes a project's summary after every
  record write, so this sees every change without reading 100,000 records.

Output folder ``OUT``::

    OUT/simple -> .gen/<generation>          switched atomically by a full run
    OUT/.gen/<g>/index.html, index.json      the project list (PEP 503 / PEP 691)
    OUT/.gen/<g>/<name> -> ../../.pages/<name>/<digest>   switched atomically per project
    OUT/.pages/<name>/<digest>/index.html, index.json
    OUT/wheels -> <store>/wheels             (a local store; an S3 store's files are copied)
    OUT/manifest.json                        per-project change tag and page digest

Pages link to ``../../wheels/<sha256>/<file>``, and the PEP 658 ``.metadata`` file sits
beside each wheel, exactly as the store lays them out, so ``--upload`` only has to put the
pages into the bucket (at ``…/index.html`` / ``…/index.json`` keys).

Serving PEP 691 with content negotiation: ``refinery serve OUT`` (see :func:`handler`)
answers ``Accept: application/vnd.pypi.simple.v1+json`` with ``index.json``; a plain
static server (``python -m http.server``) serves HTML, which every client accepts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from refinery.core.errors import InputError, StoreError
from refinery.core.models import BuildRecord
from refinery.core.vocab import SIMPLE_HTML, SIMPLE_JSON
from refinery.store.ledger import (
    LocalBlobStore,
    ProjectSummary,
    Store,
    SummaryEntry,
    project_key,
    usable_record,
    wheel_key,
)

if TYPE_CHECKING:
    import jinja2

    from refinery.upstream.simple import IndexClient

INDEX_SCHEMA = 1
API_VERSION = "1.1"
JSON_TYPE = SIMPLE_JSON
HTML_TYPE = SIMPLE_HTML
MANIFEST = "manifest.json"
REMOTE_MANIFEST = "simple/manifest.json"


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One file on a project page."""

    filename: str
    url: str
    version: str
    sha256: str | None
    size: int | None = None
    requires_python: str | None = None
    yanked: str | None = None  # None: not yanked; else the reason ("" for none given)
    metadata: str | None = None  # "sha256=<hex>", "true" (hash unknown) or None
    upstream: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filename": self.filename,
            "url": self.url,
            "hashes": {"sha256": self.sha256} if self.sha256 else {},
            "requires-python": self.requires_python,
            "yanked": self.yanked if self.yanked else self.yanked is not None,
        }
        if self.size is not None:
            out["size"] = self.size
        if self.metadata:
            meta: Any = (
                {"sha256": self.metadata.removeprefix("sha256=")}
                if self.metadata.startswith("sha256=")
                else True
            )
            out["core-metadata"] = meta
            out["dist-info-metadata"] = meta
        return out


def from_entry(entry: SummaryEntry) -> IndexFile:
    return IndexFile(
        filename=entry.filename,
        url=f"../../wheels/{entry.sha256}/{entry.filename}",
        version=entry.version,
        sha256=entry.sha256,
        size=entry.size,
        requires_python=entry.requires_python,
        yanked=entry.yanked,
        metadata=f"sha256={entry.metadata_sha256}",
    )


def _version_sort(v: str) -> tuple[int, Any]:
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def project_files(
    summary: ProjectSummary | None, upstream: Iterable[IndexFile] = ()
) -> list[IndexFile]:
    """Our files (one per filename), then upstream ones we do not shadow, sorted."""
    ours: dict[str, IndexFile] = {}
    if summary is not None:
        for _rel, entry in sorted(summary.files.items()):
            ours.setdefault(entry.filename, from_entry(entry))
    files = list(ours.values())
    files += [f for f in upstream if f.filename not in ours]
    files.sort(key=lambda f: (_version_sort(f.version), f.upstream, f.filename))
    return files


@dataclass(frozen=True, slots=True)
class Rendered:
    name: str
    html: bytes
    json: bytes
    files: tuple[IndexFile, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.html + b"\0" + self.json).hexdigest()[:20]


class Renderer:
    """jinja2 templates from ``refinery/index/templates``; JSON by ``json.dumps``."""

    def __init__(self) -> None:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("refinery.index", "templates"),
            autoescape=True,
            trim_blocks=False,
            keep_trailing_newline=True,
        )
        self.root_t: jinja2.Template = env.get_template("simple_root.html.j2")
        self.project_t: jinja2.Template = env.get_template("simple_project.html.j2")

    def project(self, name: str, files: list[IndexFile]) -> Rendered:
        html = self.project_t.render(name=name, files=files, api_version=API_VERSION)
        versions = sorted({f.version for f in files}, key=_version_sort)
        doc = {
            "meta": {"api-version": API_VERSION},
            "name": name,
            "versions": versions,
            "files": [f.to_json() for f in files],
        }
        return Rendered(name, html.encode(), json.dumps(doc, indent=1).encode(), tuple(files))

    def root(self, names: list[str]) -> tuple[bytes, bytes]:
        html = self.root_t.render(projects=names, api_version=API_VERSION)
        doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
        return html.encode(), json.dumps(doc, separators=(",", ":")).encode()


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
        return {
            "schema": self.schema,
            "out": self.out,
            "full": self.full,
            "projects": self.projects,
            "files": self.files,
            "rendered": list(self.rendered),
            "removed": list(self.removed),
            "repaired": list(self.repaired),
            "uploaded": self.uploaded,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class _Manifest:
    store: str
    overlay: bool
    projects: dict[str, list[str]] = field(default_factory=dict)  # name -> [tag, digest]
    files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": INDEX_SCHEMA,
            "store": self.store,
            "overlay": self.overlay,
            "files": self.files,
            "projects": self.projects,
        }


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _symlink(target: str, link: Path) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    os.symlink(target, tmp)
    os.replace(tmp, link)


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
        self.local = isinstance(store.blobs, LocalBlobStore)
        self.workers = workers or (1 if self.local else 32)
        self._renderer: Renderer | None = None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # compiling the templates costs milliseconds
            self._renderer = Renderer()
        return self._renderer

    # --- public -----------------------------------------------------------------
    def build(self, *, full: bool = False, upload: bool = False) -> IndexResult:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        current = self._current_generation()
        if manifest is None or current is None:
            full = True
        repaired: list[str] = []
        if full:
            repaired = self._derive_summaries()
        tags = dict(self.store.summaries())
        old = manifest.projects if manifest and not full else {}
        changed = [n for n in sorted(tags) if old.get(n, [None])[0] != tags[n]]
        upstream: dict[str, list[IndexFile]] = {}
        if self.overlay is not None and changed:
            upstream = upstream_files(self.overlay, changed)
        rendered: dict[str, Rendered] = dict(
            zip(changed, self._map(self._render_one(upstream), changed), strict=True)
        )
        self._expose_wheels(rendered.values())

        # Every summary is tracked; only projects with at least one file are served.
        new = _Manifest(self.store.url, self.overlay is not None)
        new.projects = {n: old[n] for n in sorted(tags) if n in old and n not in rendered}
        for name, page in rendered.items():
            new.projects[name] = [tags[name], page.digest, str(len(page.files))]
        new.files = sum(int(entry[2]) for entry in new.projects.values())
        names = sorted(n for n, entry in new.projects.items() if int(entry[2]) > 0)
        old_names = {n for n, entry in old.items() if len(entry) > 2 and int(entry[2]) > 0}
        removed = sorted(old_names - set(names))
        written = [
            n for n in names if n in rendered and old.get(n, [None, None])[1] != rendered[n].digest
        ]

        if full:
            self._switch_generation(rendered, names)
        else:
            assert current is not None
            self._update_generation(
                current,
                {n: rendered[n] for n in written},
                removed,
                names_changed=set(names) != old_names,
            )
        if full or rendered or removed or new.projects != old:
            _write(self.out / MANIFEST, json.dumps(new.to_json()).encode())
        uploaded = self._upload(new, names) if upload else 0
        return IndexResult(
            out=str(self.out),
            full=full,
            projects=len(names),
            files=new.files,
            rendered=tuple(written),
            removed=tuple(removed),
            repaired=tuple(repaired),
            uploaded=uploaded,
            seconds=time.perf_counter() - started,
        )

    # --- deriving ---------------------------------------------------------------
    def _map(self, fn: Any, items: list[Any]) -> Iterator[Any]:
        if self.workers <= 1 or len(items) < 2:
            return map(fn, items)
        pool = ThreadPoolExecutor(max_workers=self.workers)
        try:
            return iter(list(pool.map(fn, items)))
        finally:
            pool.shutdown()

    def _derive_summaries(self) -> list[str]:
        """Full run: re-derive every summary from the records; repair those that differ."""
        blobs = self.store.blobs
        by_project: dict[str, list[str]] = {}
        for key in blobs.list("records/"):
            parts = key.split("/")
            if len(parts) == 4 and key.endswith(".json"):
                by_project.setdefault(parts[1], []).append(f"{parts[2]}/{parts[3][:-5]}")
        existing = {name for name, _ in self.store.summaries()}
        repaired: list[str] = []

        def derive(name: str) -> bool:
            summary = self.store.get_summary(name) if name in existing else None
            have = summary.files if summary else {}
            entries: dict[str, SummaryEntry | None] = {}
            for rel in by_project[name]:
                version, _, python = rel.rpartition("/")
                record = self._record(name, version, python)
                old = have.get(rel)
                if (
                    old is not None
                    and record is not None
                    and usable_record(record)
                    and record.wheel is not None
                    and record.wheel.sha256 == old.sha256
                    and blobs.exists(wheel_key(old.sha256, old.filename))
                ):
                    entries[rel] = old.evolve_from(record)
                else:
                    entries[rel] = self.store.summary_entry(record)
            want = {k: v for k, v in entries.items() if v is not None}
            if summary is not None and want == summary.files:
                return False
            if summary is None and not want:
                return False
            return self.store.refresh_summary(name, None, known=entries)

        names = sorted(by_project)
        for name, changed in zip(names, self._map(derive, names), strict=True):
            if changed:
                repaired.append(name)
        for name in sorted(existing - set(by_project)):
            blobs.delete(project_key(name))  # a summary without records serves nothing
            repaired.append(name)
        return repaired

    def _record(self, name: str, version: str, python: str) -> BuildRecord | None:
        try:
            return self.store.get_record(name, version, python)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"records/{name}/{version}/{python}.json: unreadable: {exc}") from None

    def _render_one(self, upstream: dict[str, list[IndexFile]]) -> Any:
        def render(name: str) -> Rendered:
            summary = self.store.get_summary(name)
            return self.renderer.project(name, project_files(summary, upstream.get(name, ())))

        return render

    # --- the output tree --------------------------------------------------------
    def _load_manifest(self) -> _Manifest | None:
        try:
            data = json.loads((self.out / MANIFEST).read_bytes())
        except (OSError, ValueError):
            return None
        if (
            data.get("schema") != INDEX_SCHEMA
            or data.get("store") != self.store.url
            or data.get("overlay") != (self.overlay is not None)
        ):
            return None
        return _Manifest(data["store"], data["overlay"], data["projects"], data.get("files", 0))

    def _current_generation(self) -> Path | None:
        link = self.out / "simple"
        if not link.is_symlink():
            return None
        target = self.out / os.readlink(link)
        return target if target.is_dir() else None

    def _write_page(self, page: Rendered) -> str:
        """Write a project's pages into their own content-named folder; its link target."""
        folder = self.out / ".pages" / page.name / page.digest
        if not (folder / "index.json").exists():
            tmp = folder.with_name(f".{page.digest}.{secrets.token_hex(4)}")
            tmp.mkdir(parents=True)
            (tmp / "index.html").write_bytes(page.html)
            (tmp / "index.json").write_bytes(page.json)
            try:
                os.rename(tmp, folder)
            except OSError:  # another run wrote the same digest
                shutil.rmtree(tmp, ignore_errors=True)
        return f"../../.pages/{page.name}/{page.digest}"

    def _switch_generation(self, rendered: dict[str, Rendered], names: list[str]) -> None:
        """Full run: a new tree, then one atomic switch of ``OUT/simple``."""
        gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        tree = self.out / ".gen" / gen
        tree.mkdir(parents=True)
        for name in names:
            os.symlink(self._write_page(rendered[name]), tree / name)
        html, js = self.renderer.root(names)
        (tree / "index.html").write_bytes(html)
        (tree / "index.json").write_bytes(js)
        previous = self._current_generation()
        _symlink(f".gen/{gen}", self.out / "simple")
        if previous is not None and previous != tree:
            shutil.rmtree(previous, ignore_errors=True)
        self._prune_pages({n: rendered[n].digest for n in names})

    def _update_generation(
        self, tree: Path, written: dict[str, Rendered], removed: list[str], *, names_changed: bool
    ) -> None:
        """Incremental run: switch each changed project's link, then the project list."""
        for name, page in written.items():
            old = os.readlink(tree / name) if (tree / name).is_symlink() else None
            _symlink(self._write_page(page), tree / name)
            if old is not None and not old.endswith(f"/{page.digest}"):
                shutil.rmtree(tree / old, ignore_errors=True)
        if names_changed:
            names = sorted(
                p.name for p in tree.iterdir() if p.is_symlink() and p.name not in removed
            )
            html, js = self.renderer.root(names)
            _write(tree / "index.html", html)
            _write(tree / "index.json", js)
        for name in removed:
            link = tree / name
            target = os.readlink(link) if link.is_symlink() else None
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            if target:
                shutil.rmtree(tree / target, ignore_errors=True)

    def _prune_pages(self, keep: dict[str, str]) -> None:
        pages = self.out / ".pages"
        if not pages.is_dir():
            return
        for project in os.scandir(pages):
            want = keep.get(project.name)
            for entry in os.scandir(project.path):
                if entry.name != want:
                    shutil.rmtree(entry.path, ignore_errors=True)
            if want is None:
                shutil.rmtree(project.path, ignore_errors=True)

    def _expose_wheels(self, pages: Iterable[Rendered]) -> None:
        """Make ``OUT/wheels`` hold what the pages link to."""
        link = self.out / "wheels"
        blobs = self.store.blobs
        if isinstance(blobs, LocalBlobStore):
            target = str(blobs.root / "wheels")
            (blobs.root / "wheels").mkdir(parents=True, exist_ok=True)
            if not link.is_symlink() or os.readlink(link) != target:
                if link.is_dir() and not link.is_symlink():
                    shutil.rmtree(link)
                _symlink(target, link)
            return
        if link.is_symlink():
            link.unlink()
        for page in pages:
            for f in page.files:
                if f.upstream or f.sha256 is None:
                    continue
                key = wheel_key(f.sha256, f.filename)
                for k in (key + ".metadata", key):  # metadata first, as in the store
                    dest = self.out / k
                    if dest.exists():
                        continue
                    got = blobs.get(k)
                    if got is None:
                        raise StoreError(f"{k}: listed by projects/{page.name}.json but missing")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    _write(dest, got[0])

    # --- upload -----------------------------------------------------------------
    def _upload(self, manifest: _Manifest, names: list[str]) -> int:
        """Put changed pages into the store's bucket: projects, then the list, then
        deletions; the remote manifest last. Pages sit at ``…/index.html`` keys."""
        blobs = self.store.blobs
        got = blobs.get(REMOTE_MANIFEST)
        remote: dict[str, str] = {}
        if got is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                doc = json.loads(got[0])
                if doc.get("schema") == INDEX_SCHEMA:
                    remote = dict(doc["pages"])
        tree = self.out / "simple"
        todo = [n for n in names if remote.get(n) != manifest.projects[n][1]]

        def put(name: str) -> None:
            for leaf in ("index.html", "index.json"):
                blobs.put(f"simple/{name}/{leaf}", (tree / name / leaf).read_bytes())

        list(self._map(put, todo) if not self.local else map(put, todo))
        root_digest = hashlib.sha256((tree / "index.json").read_bytes()).hexdigest()
        count = len(todo) * 2
        if remote.get("") != root_digest:
            for leaf in ("index.html", "index.json"):
                blobs.put(f"simple/{leaf}", (tree / leaf).read_bytes())
            count += 2
        for name in sorted(set(remote) - set(names) - {""}):
            for leaf in ("index.html", "index.json"):
                blobs.delete(f"simple/{name}/{leaf}")
        pages = {n: manifest.projects[n][1] for n in names}
        pages[""] = root_digest
        blobs.put(REMOTE_MANIFEST, json.dumps({"schema": INDEX_SCHEMA, "pages": pages}).encode())
        return count


def build_index(
    store: Store,
    out: Path,
    *,
    full: bool = False,
    upload: bool = False,
    overlay_url: str | None = None,
    cache_dir: Path | None = None,
) -> IndexResult:
    overlay = None
    if overlay_url:
        from refinery.upstream.simple import IndexClient

        overlay = IndexClient(overlay_url, cache_dir=cache_dir)
    if out.exists() and not out.is_dir():
        raise InputError("not a folder", path=str(out))
    return Index(store, out, overlay=overlay).build(full=full, upload=upload)


# --- serving ------------------------------------------------------------------------
def handler(directory: Path) -> Any:
    """An ``http.server`` handler for ``OUT`` with PEP 691 content negotiation."""
    import io
    from functools import partial
    from http.server import SimpleHTTPRequestHandler

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send_head(self) -> Any:
            path = Path(self.translate_path(self.path))
            if path.is_dir() and self.path.split("?")[0].endswith("/"):
                choice = negotiate(self.headers.get("Accept", ""))
                if choice is None:
                    self.send_error(406, "Not Acceptable")
                    return None
                leaf = path / ("index.json" if choice == JSON_TYPE else "index.html")
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

    return partial(Handler, directory=str(directory))


def negotiate(accept: str) -> str | None:
    """PEP 691: pick JSON, versioned HTML or text/html by the client's q-values."""
    if not accept.strip():
        return "text/html"
    offers = {JSON_TYPE: 3, HTML_TYPE: 2, "text/html": 1}
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
