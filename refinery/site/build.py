"""Generate the status pages and build the site with MkDocs (strict).

Full builds render every page. When nothing but the Markdown changed since the previous
build into the same output directory (same ``mkdocs.yml``, same set of navigation pages,
same MkDocs/theme versions), the build is incremental: MkDocs' ``dirty`` mode renders
only pages whose Markdown is newer than their HTML — which, because the generator
rewrites only pages whose records changed, is the handful that did.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path

from refinery.core.errors import InputError, RefineryError
from refinery.site.generate import GenerateResult, Generator, SiteOptions, log_keys, publish_logs
from refinery.site.model import load
from refinery.store import Store

STAMP = ".refinery-site.json"
HOOKS = Path(__file__).with_name("mkdocs_hooks.py")
# Generated pages that are not in the navigation (their set may change between builds).
UNLISTED = ("status/packages/", "status/plans/")
DIRTY_WARNING = "A 'dirty' build is being performed"


class SiteError(RefineryError):
    """MkDocs refused to build the site (strict mode turns warnings into this)."""


@dataclass(slots=True)
class SiteBuild:
    generated: GenerateResult
    packages: int
    mode: str  # "full" | "incremental" | "markdown-only"
    load_seconds: float = 0.0
    generate_seconds: float = 0.0
    mkdocs_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    logs_published: int = 0

    @property
    def seconds(self) -> float:
        return self.load_seconds + self.generate_seconds + self.mkdocs_seconds


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(DIRTY_WARNING):
            self.messages.append(message)


def _versions() -> str:
    out = []
    for dist in ("mkdocs", "mkdocs-material"):
        try:
            out.append(f"{dist}={dist_version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist}=?")
    return " ".join(out)


def _stamp(config_file: Path, docs_dir: Path) -> str:
    """What must be unchanged for an incremental build: config, hooks, nav pages, versions."""
    h = hashlib.sha256()
    h.update(config_file.read_bytes() + b"\0" + _versions().encode() + b"\0")
    h.update(HOOKS.read_bytes() + b"\0")
    h.update(str(docs_dir.resolve()).encode() + b"\0")
    listed = []
    for path in docs_dir.rglob("*.md"):
        rel = path.relative_to(docs_dir).as_posix()
        if not rel.startswith(UNLISTED):
            listed.append(rel)
    h.update("\n".join(sorted(listed)).encode())
    return h.hexdigest()


def run_mkdocs(
    config_file: Path, docs_dir: Path, site_dir: Path, *, dirty: bool, strict: bool = True
) -> list[str]:
    """Build with MkDocs; returns the warnings (raises :class:`SiteError` in strict mode)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    logger = logging.getLogger("mkdocs")
    collect = _Collect()
    saved = logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    try:
        try:
            config = load_config(
                str(config_file),
                docs_dir=str(docs_dir.resolve()),
                site_dir=str(site_dir.resolve()),
                strict=False,  # counted here, so the known dirty-mode warning can pass
                hooks=[str(HOOKS)],
            )
        except ConfigurationError as exc:
            raise InputError(f"mkdocs configuration: {exc}", path=str(config_file)) from None
        config.plugins.on_startup(command="build", dirty=dirty)
        try:
            build(config, dirty=dirty)
        except Abort as exc:
            raise SiteError(f"mkdocs build failed: {exc}") from None
        finally:
            config.plugins.on_shutdown()
    finally:
        logger.removeHandler(collect)
        logger.propagate = saved
    if strict and collect.messages:
        first = collect.messages[0].splitlines()[0]
        raise SiteError(
            f"mkdocs build --strict: {len(collect.messages)} warning(s), first: {first}"
        )
    return collect.messages


def build_site(
    store: Store,
    *,
    docs_dir: Path,
    site_dir: Path | None,
    config_file: Path,
    options: SiteOptions | None = None,
    full: bool = False,
    strict: bool = True,
) -> SiteBuild:
    """Regenerate ``docs_dir/status/`` from ``store`` and build the site into ``site_dir``
    (``None``: Markdown only)."""
    options = options or SiteOptions()
    if not config_file.is_file():
        raise InputError("no mkdocs configuration here", path=str(config_file))
    if not docs_dir.is_dir():
        raise InputError("docs directory not found", path=str(docs_dir))
    status_dir = docs_dir / "status"
    t0 = time.perf_counter()
    data = load(store)
    t1 = time.perf_counter()
    if full:
        from refinery.site.generate import clean

        clean(status_dir)
    generated = Generator(store, status_dir, options).run(data)
    t2 = time.perf_counter()
    result = SiteBuild(generated, len(data.packages), "markdown-only", t1 - t0, t2 - t1)
    if site_dir is None:
        return result
    stamp = _stamp(config_file, docs_dir)
    stamp_file = site_dir / STAMP
    try:
        previous = json.loads(stamp_file.read_text()).get("stamp")
    except (FileNotFoundError, ValueError, AttributeError):
        previous = None
    dirty = not full and previous == stamp and (site_dir / "index.html").exists()
    if dirty:
        for rel in generated.removed:
            (site_dir / "status" / rel).with_suffix(".html").unlink(missing_ok=True)
            name = rel.removeprefix("packages/").removesuffix(".md")
            if rel.startswith("packages/") and name not in data.packages:
                shutil.rmtree(site_dir / "status" / store.logs_of(name), ignore_errors=True)
    # A failed build leaves a half-written site: the next one must be full.
    stamp_file.unlink(missing_ok=True)
    result.warnings = run_mkdocs(config_file, docs_dir, site_dir, dirty=dirty, strict=strict)
    # Logs go straight into the site (not through docs/: 10,000s of files MkDocs would
    # walk and copy on every build). Incremental: only the regenerated packages' logs.
    changed = [data.packages[n] for n in generated.regenerated] if dirty else data.packages.values()
    if options.copy_logs:  # else the full logs stay in the store (SiteOptions.logs_url)
        result.logs_published = publish_logs(store, log_keys(changed), site_dir / "status")
    stamp_file.write_text(json.dumps({"stamp": stamp}))
    result.mode = "incremental" if dirty else "full"
    result.mkdocs_seconds = time.perf_counter() - t2
    return result
