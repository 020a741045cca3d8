"""Index pages: PEP 503 HTML (jinja2, ``refinery/index/templates``), PEP 691 JSON, and the
PEP 658/714 metadata attributes, rendered from project summaries (plus upstream files in
overlay mode).

The HTML page also says, for people, on which distributions each s390x wheel installs
(its glibc floor against :data:`refinery.core.glibc.DISTRIBUTIONS`): a ``<small>``
element after the anchor, which PEP 503 allows and installers skip (they read anchors
and their ``href``/``data-*`` attributes only). The JSON page stays as PEP 691 has it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from refinery.core.glibc import wheel_installs_on
from refinery.core.versions import sort_key
from refinery.store import ProjectSummary, Store, SummaryEntry

if TYPE_CHECKING:
    import jinja2

API_VERSION = "1.1"


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

    @property
    def installs_on(self) -> str:
        """For people reading the page: the distributions an s390x manylinux wheel
        installs on (``""`` for other files). Printed after the anchor, never in it."""
        return wheel_installs_on(self.filename)

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
    """A file of ours: pages sit two levels below the wheels the store lays out."""
    return IndexFile(
        filename=entry.filename,
        url="../../" + Store.wheel_path(entry.sha256, entry.filename),
        version=entry.version,
        sha256=entry.sha256,
        size=entry.size,
        requires_python=entry.requires_python,
        yanked=entry.yanked,
        metadata=f"sha256={entry.metadata_sha256}",
    )


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
    files.sort(key=lambda f: (sort_key(f.version), f.upstream, f.filename))
    return files


@dataclass(frozen=True, slots=True)
class Rendered:
    """A project's two pages and the files they list."""

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
        versions = sorted({f.version for f in files}, key=sort_key)
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
