"""The index's output folder: written atomically (a new tree, then one switch) on a full
run and per project on an incremental one, with a manifest of what each page was
rendered from.

Output folder ``OUT``::

    OUT/simple -> .gen/<generation>          switched atomically by a full run
    OUT/.gen/<g>/index.html, index.json      the project list (PEP 503 / PEP 691)
    OUT/.gen/<g>/<name> -> ../../.pages/<name>/<digest>   switched atomically per project
    OUT/.pages/<name>/<digest>/index.html, index.json
    OUT/wheels -> <store>/wheels             (a local store; an S3 store's files are copied)
    OUT/manifest.json                        per-project change tag and page digest
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refinery.index.render import Rendered
from refinery.store import Store
from refinery.store.layout import provenance_key
from refinery.store.provenance import get_provenance

INDEX_SCHEMA = 1
MANIFEST = "manifest.json"

#: The project list's two pages (HTML, JSON) for the given names.
RootPages = Callable[[list[str]], tuple[bytes, bytes]]


@dataclass
class Manifest:
    """``OUT/manifest.json``: per project ``[change tag, page digest, file count]``."""

    store: str
    overlay: bool
    projects: dict[str, list[str]] = field(default_factory=dict)
    files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": INDEX_SCHEMA,
            "store": self.store,
            "overlay": self.overlay,
            "files": self.files,
            "projects": self.projects,
        }

    def served(self) -> list[str]:
        """Projects with at least one file, sorted (every summary is tracked)."""
        return sorted(n for n, entry in self.projects.items() if _count(entry) > 0)


def _count(entry: list[str]) -> int:
    return int(entry[2]) if len(entry) > 2 else 0


@dataclass(frozen=True, slots=True)
class Update:
    """What a run changes: the new manifest, the served names, pages to switch."""

    manifest: Manifest
    names: list[str]
    removed: list[str]
    written: list[str]
    names_changed: bool


def next_manifest(
    new: Manifest,
    old: Mapping[str, list[str]],
    tags: Mapping[str, str],
    rendered: Mapping[str, Rendered],
) -> Update:
    """Fill ``new`` from the ``old`` manifest's projects, the summaries' change ``tags``
    and the pages just ``rendered``; what to write, remove and relist."""
    new.projects = {n: old[n] for n in sorted(tags) if n in old and n not in rendered}
    for name, page in rendered.items():
        new.projects[name] = [tags[name], page.digest, str(len(page.files))]
    new.files = sum(_count(entry) for entry in new.projects.values())
    names = new.served()
    old_names = {n for n, entry in old.items() if _count(entry) > 0}
    written = [
        n for n in names if n in rendered and old.get(n, [None, None])[1] != rendered[n].digest
    ]
    return Update(new, names, sorted(old_names - set(names)), written, set(names) != old_names)


def write_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically (a new file renamed over the old)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _symlink(target: str, link: Path) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    os.symlink(target, tmp)
    os.replace(tmp, link)


class OutputTree:
    """``OUT``: generations, content-named page folders, the manifest, the wheels."""

    def __init__(self, out: Path, root_pages: RootPages) -> None:
        self.out = out
        self.root_pages = root_pages

    def load_manifest(self, store: str, overlay: bool) -> Manifest | None:
        """The previous run's manifest, if it was of the same store and overlay mode."""
        try:
            data = json.loads((self.out / MANIFEST).read_bytes())
        except (OSError, ValueError):
            return None
        if (
            data.get("schema") != INDEX_SCHEMA
            or data.get("store") != store
            or data.get("overlay") != overlay
        ):
            return None
        return Manifest(data["store"], data["overlay"], data["projects"], data.get("files", 0))

    def save_manifest(self, manifest: Manifest) -> None:
        write_file(self.out / MANIFEST, json.dumps(manifest.to_json()).encode())

    def current_generation(self) -> Path | None:
        link = self.out / "simple"
        if not link.is_symlink():
            return None
        target = self.out / os.readlink(link)
        return target if target.is_dir() else None

    def write_page(self, page: Rendered) -> str:
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

    def switch_generation(self, rendered: Mapping[str, Rendered], names: list[str]) -> None:
        """Full run: a new tree, then one atomic switch of ``OUT/simple``."""
        gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        tree = self.out / ".gen" / gen
        tree.mkdir(parents=True)
        for name in names:
            os.symlink(self.write_page(rendered[name]), tree / name)
        html, js = self.root_pages(names)
        (tree / "index.html").write_bytes(html)
        (tree / "index.json").write_bytes(js)
        previous = self.current_generation()
        _symlink(f".gen/{gen}", self.out / "simple")
        if previous is not None and previous != tree:
            shutil.rmtree(previous, ignore_errors=True)
        self._prune_pages({n: rendered[n].digest for n in names})

    def update_generation(
        self, tree: Path, update: Update, rendered: Mapping[str, Rendered]
    ) -> None:
        """Incremental run: switch each changed project's link, then the project list."""
        for name in update.written:
            page = rendered[name]
            old = os.readlink(tree / name) if (tree / name).is_symlink() else None
            _symlink(self.write_page(page), tree / name)
            if old is not None and not old.endswith(f"/{page.digest}"):
                shutil.rmtree(tree / old, ignore_errors=True)
        if update.names_changed:
            names = sorted(
                p.name for p in tree.iterdir() if p.is_symlink() and p.name not in update.removed
            )
            html, js = self.root_pages(names)
            write_file(tree / "index.html", html)
            write_file(tree / "index.json", js)
        for name in update.removed:
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

    def link_wheels(self, folder: Path) -> None:
        """``OUT/wheels`` → a local store's wheels folder."""
        link = self.out / "wheels"
        target = str(folder)
        if not link.is_symlink() or os.readlink(link) != target:
            if link.is_dir() and not link.is_symlink():
                shutil.rmtree(link)
            _symlink(target, link)

    def unlink_wheels(self) -> None:
        """Drop a link left by a run over a local store (files are copied in now)."""
        link = self.out / "wheels"
        if link.is_symlink():
            link.unlink()

    def write_provenance(self, store: Store, sha256: str, filename: str) -> None:
        """Copy a wheel's PEP 740 provenance object beside its copy in ``OUT/wheels``
        (an S3 store's index; a local store's link serves the store's own file)."""
        provenance = get_provenance(store, sha256, filename)
        if provenance is not None:
            path = self.out / provenance_key(sha256, filename)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, json.dumps(provenance).encode())

    def read(self, rel: str) -> bytes:
        """A file of the current tree, ``rel`` below ``OUT/simple``."""
        return (self.out / "simple" / rel).read_bytes()
