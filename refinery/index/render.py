"""Index pages: PEP 503 HTML (jinja2, ``refinery/index/templates``), PEP 691 JSON, and the
PEP 658/714 metadata attributes and PEP 740 provenance links, rendered from project
summaries (plus upstream files in overlay mode).

PEP 740 (the simple API's ``data-provenance`` attribute and the JSON ``provenance`` key,
https://packaging.python.org/en/latest/specifications/simple-repository-api/): a file
with an attestation gets the URL of its provenance object, which the store keeps beside
the wheel (``wheels/<sha256>/<file>.provenance``); files without one carry neither.
The URL is relative like the file's own (a static index does not know where it is
served); the specification asks for a fully qualified one.

The HTML page also says, for people, on which distributions each s390x wheel installs
(its glibc floor against :data:`refinery.core.glibc.DISTRIBUTIONS`): a ``<small>``
element after the anchor, which PEP 503 allows and installers skip (they read anchors
and their ``href``/``data-*`` attributes only). The JSON page stays as PEP 691 has it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from refinery.core.glibc import wheel_installs_on
from refinery.core.versions import sort_key
from refinery.store import ProjectSummary, Store, SummaryEntry
from refinery.store.layout import provenance_key

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
    provenance: str | None = None  # PEP 740: URL of the file's provenance object

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
        if self.provenance:
            out["provenance"] = self.provenance
        return out


#: Whether the store holds a provenance object for the wheel (sha256, filename).
HasProvenance = Callable[[str, str], bool]


def from_entry(entry: SummaryEntry, provenance: HasProvenance | None = None) -> IndexFile:
    """A file of ours: pages sit two levels below the wheels the store lays out."""
    url = "../../" + Store.wheel_path(entry.sha256, entry.filename)
    attested = provenance is not None and provenance(entry.sha256, entry.filename)
    return IndexFile(
        filename=entry.filename,
        url=url,
        version=entry.version,
        sha256=entry.sha256,
        size=entry.size,
        requires_python=entry.requires_python,
        yanked=entry.yanked,
        metadata=f"sha256={entry.metadata_sha256}",
        provenance="../../" + provenance_key(entry.sha256, entry.filename) if attested else None,
    )


def project_files(
    summary: ProjectSummary | None,
    upstream: Iterable[IndexFile] = (),
    provenance: HasProvenance | None = None,
) -> list[IndexFile]:
    """Our files (one per filename), then upstream ones we do not shadow, sorted."""
    ours: dict[str, IndexFile] = {}
    if summary is not None:
        for _rel, entry in sorted(summary.files.items()):
            if entry.filename not in ours:
                ours[entry.filename] = from_entry(entry, provenance)
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
