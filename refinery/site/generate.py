"""Markdown for the status pages under ``docs/status/``, rendered with jinja2.

Package pages are the bulk (one per project, 10,000 and more): each is regenerated only
when the digest of its records changes (``.manifest.json``); the few aggregate pages are
rendered every time but written only when their text changed, so their mtime — which is
what an incremental mkdocs build looks at — moves only when they did.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from refinery.core.glibc import wheel_installs_on
from refinery.core.models import Attempt, Event, NodeStatus
from refinery.site import plots, stats
from refinery.site.logs import Excerpt, excerpt
from refinery.site.model import FAILURE, QUEUE, Node, Package, SiteData, python_key
from refinery.store import Store

#: Bump when templates or page logic change: every page is regenerated.
GENERATOR_VERSION = "2"
MANIFEST = ".manifest.json"
MAX_EXCERPTS = 3  # failed attempts shown per node, newest first


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """``logs_url``: where the store's log keys are public (``{logs_url}/logs/…``, e.g.
    the bucket's website); "": the full logs stay in the store and a page names the
    ``refinery logs`` command of each. Pages keep the highlighted excerpt either way.
    ``copy_logs``: copy every full log into the site instead (a small site only: 10,000
    packages with real-size logs outgrow GitHub Pages' 1 GB, notes/reliability.md)."""

    pip_index: str = "https://YOUR-INDEX/simple/"
    hints_dir: Path = Path("hints")
    recent: int = 20
    logs_url: str = ""
    copy_logs: bool = False

    def log_href(self, key: str) -> str | None:
        """The link of a stored log from a package page (None: not published)."""
        if self.copy_logs:
            return f"../{key}"
        return f"{self.logs_url.rstrip('/')}/{key}" if self.logs_url else None

    def digest(self) -> str:
        logs = f"{self.logs_url}\0{self.copy_logs}"
        key = f"{GENERATOR_VERSION}\0{_code_digest()}\0{self.pip_index}\0{logs}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@functools.cache
def _code_digest() -> str:
    """Templates and page code: editing either regenerates every page."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted([*here.glob("templates/*.j2"), here / "logs.py", here / "generate.py"]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@dataclass(slots=True)
class GenerateResult:
    written: list[str] = field(default_factory=list)  # paths relative to the status dir
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    regenerated: list[str] = field(default_factory=list)  # packages whose page was rendered


# --- jinja --------------------------------------------------------------------------
def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    text = html.escape(str(value or ""), quote=False).replace("|", "\\|")
    return " ".join(text.split())


def badge(status: object) -> str:
    s = str(status)
    return f'<span class="rf-st rf-{s}">{s}</span>'


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def when(value: str | None) -> str:
    if not value:
        return ""
    return value.replace("T", " ").removesuffix("Z")[:16]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("refinery.site", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_cell, h=html.escape, badge=badge, dur=duration, when=when)
    env.filters["installs_on"] = wheel_installs_on
    return env


# --- package pages --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AttemptView:
    attempt: Attempt
    log_href: str | None  # relative to the package page
    excerpt_html: str | None
    excerpt: Excerpt | None
    anchor: str
    fallback: str = ""  # why this attempt ran on the fallback (emulated) root
    log_command: str = ""  # how to read the full log when the site does not link it


#: The build runner's ``fallback`` event: ``attempt N on BACKEND: reason``.
_FALLBACK = re.compile(r"attempt (\d+) on \S+: (.+)", re.DOTALL)


def fallback_reasons(events: Iterable[Event]) -> dict[int, str]:
    """Attempt number → why it ran on the fallback root, from the record's events."""
    out: dict[int, str] = {}
    for event in events:
        found = _FALLBACK.fullmatch(event.message) if event.kind == "fallback" else None
        if found is not None:
            out[int(found.group(1))] = found.group(2)
    return out


def _attempt_views(
    node: Node, store: Store, options: SiteOptions | None = None
) -> list[AttemptView]:
    """The node's attempts; the logs of the last failed ones are read for their excerpts.

    Full logs are linked where ``options`` publish them (copied into the built site by
    :func:`publish_logs`, not here); else a view names their ``refinery logs`` command."""
    options = options or SiteOptions()
    rec = node.record
    views: list[AttemptView] = []
    failed = [a for a in node.record.attempts if a.status and a.status != NodeStatus.BUILT]
    show = {a.n for a in failed[-MAX_EXCERPTS:]}
    moved = fallback_reasons(node.record.events)
    for a in node.record.attempts:
        key = a.log if store.is_log(a.log) else None
        text = None
        if key is not None and a.n in show:
            got = store.get_log(key)
            text = got.decode("utf-8", "replace") if got is not None else None
        anchor = f"{node.anchor}-a{a.n}"
        ex = excerpt(text, a.matched_lines) if text is not None else None
        href = options.log_href(key) if key else None
        command = f"refinery logs {rec.name}=={rec.version}@{rec.python} --attempt {a.n}"
        html_ex = ex.html(anchor) if ex else None
        view = AttemptView(a, href, html_ex, ex, anchor, moved.get(a.n, ""), command)
        views.append(view if key else replace(view, log_command=""))
    return views


def log_keys(packages: Iterable[Package]) -> Iterator[str]:
    """The logs the attempts of ``packages`` name (each a path relative to the site)."""
    for pkg in packages:
        for n in pkg.nodes:
            for a in n.record.attempts:
                if a.log and Store.is_log(a.log):
                    yield a.log


def publish_logs(store: Store, keys: Iterable[str], status_site: Path) -> int:
    """Put the given logs under ``status_site`` (the built site's ``status/``) when absent:
    hard links from a local store, else copies. Logs are immutable, so present is current.
    """
    made: set[Path] = set()
    count = 0
    for key in keys:
        target = status_site / key
        if target.exists():
            continue
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        source = store.log_file(key)
        if source is not None:
            try:
                os.link(source, target)
                count += 1
                continue
            except FileNotFoundError:
                continue
            except OSError:
                pass  # another filesystem: copy
        got = store.get_log(key)
        if got is not None:
            target.write_bytes(got)
            count += 1
    return count


# --- the generator ----------------------------------------------------------------------
class Generator:
    def __init__(self, store: Store, status_dir: Path, options: SiteOptions) -> None:
        self.store = store
        self.dir = status_dir
        self.options = options
        self.env = _environment()
        self.plan_ids: set[str] = set()

    def _write_if_changed(self, rel: str, text: str, result: GenerateResult) -> None:
        path = self.dir / rel
        try:
            if path.read_text() == text:
                result.unchanged += 1
                return
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        result.written.append(rel)

    def _render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def _manifest(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.dir / MANIFEST).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def run(self, data: SiteData) -> GenerateResult:
        result = GenerateResult()
        self.dir.mkdir(parents=True, exist_ok=True)
        old = self._manifest()
        same_options = old.get("options") == self.options.digest()
        old_pages: dict[str, str] = old.get("pages", {}) if same_options else {}
        pages: dict[str, str] = {}
        self.plan_ids = {p.plan_id for p in data.plans}

        for name, pkg in data.packages.items():
            rel = f"packages/{name}.md"
            plans = "".join(
                "1" if n.record.plan_id in self.plan_ids else "0"
                for n in pkg.nodes
                if n.record.plan_id
            )
            digest = f"{pkg.digest}:{plans}"
            pages[rel] = digest
            if old_pages.get(rel) == digest and (self.dir / rel).exists():
                result.unchanged += 1
                continue
            result.regenerated.append(name)
            self._write_if_changed(rel, self.package_page(pkg), result)

        for rel in sorted(set(old.get("pages", {})) - set(pages)):
            (self.dir / rel).unlink(missing_ok=True)
            result.removed.append(rel)

        plan_pages = self.plan_pages(data)
        for rel, text in plan_pages.items():
            self._write_if_changed(rel, text, result)
        for stale in (
            sorted((self.dir / "plans").glob("*.md")) if (self.dir / "plans").is_dir() else ()
        ):
            rel = f"plans/{stale.name}"
            if rel not in plan_pages:
                stale.unlink()
                result.removed.append(rel)

        for rel, render in self.aggregate_pages().items():
            self._write_if_changed(rel, render(data), result)

        manifest = {"options": self.options.digest(), "pages": pages}
        tmp = self.dir / f"{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        tmp.replace(self.dir / MANIFEST)
        return result

    # --- pages ----------------------------------------------------------------------
    def package_page(self, pkg: Package) -> str:
        nodes = pkg.ordered()
        attempts = {n.record.key: _attempt_views(n, self.store, self.options) for n in nodes}
        summary = f"{pkg.name} " + ", ".join(
            f"{n.record.version} py{n.record.python} {n.record.status}" for n in nodes[:6]
        )
        return self._render(
            "package.html.j2",
            pkg=pkg,
            summary=summary,
            plan_ids=self.plan_ids,
            nodes=nodes,
            attempts=attempts,
            versions=pkg.versions,
            pythons=pkg.pythons,
            pip_index=self.options.pip_index,
            NodeStatus=NodeStatus,
        )

    def plan_pages(self, data: SiteData) -> dict[str, str]:
        out = {
            f"plans/{plan.plan_id}.md": self._render(
                "plan.md.j2", plan=plan, packages=data.packages
            )
            for plan in data.plans
        }
        out["plans.md"] = self._render("plans.md.j2", plans=data.plans, inputs=data.inputs)
        return out

    def aggregate_pages(self) -> dict[str, Callable[[SiteData], str]]:
        return {
            "index.md": self.overview,
            "builds.md": self.builds,
            "inputs.md": self.inputs,
            "hints.md": self.hints,
            "failures.md": self.failures,
        }

    def overview(self, data: SiteData) -> str:
        counts = data.counts()
        nodes = list(data.nodes())
        done = sum(counts[s] for s in (NodeStatus.BUILT, *FAILURE))
        rate = f"{100 * counts[NodeStatus.BUILT] / done:.0f}%" if done else "-"
        queue = {s: counts[s] for s in QUEUE}
        stuck = [n for n in nodes if n.stuck]
        return self._render(
            "overview.md.j2",
            data=data,
            counts=counts,
            statuses=list(NodeStatus),
            total=sum(counts.values()),
            packages=len(data.packages),
            rate=rate,
            queue=queue,
            stuck=stuck,
            recent=stats.recent_activity(nodes, self.options.recent),
            plots=_plots(nodes),
        )

    def builds(self, data: SiteData) -> str:
        nodes = list(data.nodes())
        pythons = sorted({n.record.python for n in nodes}, key=python_key)
        present = {n.record.status for n in nodes}
        return self._render(
            "builds.md.j2",
            nodes=nodes,
            pythons=pythons,
            statuses=[s for s in NodeStatus if s in present],
        )

    def inputs(self, data: SiteData) -> str:
        plan_ids = {p.plan_id for p in data.plans}
        return self._render("inputs.md.j2", inputs=data.inputs, plan_ids=plan_ids)

    def hints(self, data: SiteData) -> str:
        from refinery.site.catalog import load_catalog

        catalog = load_catalog(self.options.hints_dir)
        rows = stats.hint_stats(data.nodes(), catalog)
        return self._render("hints.md.j2", rows=rows, catalog=catalog)

    def failures(self, data: SiteData) -> str:
        """Every failed node's root cause and highlighted lines, for the site's search;
        first, the failures nothing explained, ranked by how many inputs want them."""
        found = [failure_of(n) for n in data.nodes() if n.record.status in FAILURE]
        return self._render("failures.md.j2", failures=found, unexplained=needs_a_hint(data))


#: Highlighted lines of a failed node on the failures page.
MAX_FAILURE_LINES = 12


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed node: its last failed attempt, root-cause line, highlighted lines."""

    node: Node
    attempt: Attempt | None
    cause: str
    lines: tuple[str, ...]


def wanted_by(data: SiteData) -> dict[str, int]:
    """Package name → how many inputs (requirement files) have it in their plan."""
    plans = {p.plan_id: p for p in data.plans}
    count: dict[str, int] = {}
    for item in data.inputs:
        plan = plans.get(item.plan_id or "")
        if plan is None:
            continue
        for name in {n.name for n in plan.nodes}:
            count[name] = count.get(name, 0) + 1
    return count


def needs_a_hint(data: SiteData) -> list[tuple[Failure, int]]:
    """Failed builds no catalog hint and no derived fix was applied to (nothing
    explained them), with how many inputs want the package; most wanted first."""
    wanted = wanted_by(data)
    out = [
        (failure_of(n), wanted.get(n.record.name, 0))
        for n in data.nodes()
        if n.record.status in FAILURE and not any(a.hint_ids for a in n.record.attempts)
    ]
    return sorted(out, key=lambda item: (-item[1], item[0].node.record.name))


def failure_of(node: Node) -> Failure:
    """The lines a failed node is found by: the record's reason (the root-cause line)
    and its last failed attempt's highlighted lines (from the record; no log is read)."""
    failed = [a for a in node.record.attempts if a.status and a.status != NodeStatus.BUILT]
    last = failed[-1] if failed else None
    cause = node.record.reason.splitlines()[0] if node.record.reason else ""
    lines = [line.strip() for line in (last.matched_lines if last else ()) if line.strip()]
    return Failure(node, last, cause, tuple(lines[-MAX_FAILURE_LINES:]))


def _plots(nodes: list[Node]) -> dict[str, str]:
    out: dict[str, str] = {}
    hist = stats.duration_histogram(nodes)
    labels = [label for _limit, label in stats.DURATION_BINS]
    title = "Build attempt durations"
    out["durations"] = (
        plots.bar_chart(title, labels, [plots.Series("attempts", hist, plots.COLORS["duration"])])
        if any(hist)
        else plots.empty(title)
    )
    title = "Attempts built / failed over time"
    outcomes = stats.outcomes_over_time(nodes)
    if outcomes:
        line, built, failed = outcomes
        out["outcomes"] = plots.bar_chart(
            title,
            line.labels,
            [
                plots.Series("built", built, plots.COLORS["built"]),
                plots.Series("failed", failed, plots.COLORS["failed"]),
            ],
        )
    else:
        out["outcomes"] = plots.empty(title)
    title = "Queue over time (pending, leased, building, retry)"
    queue = stats.queue_over_time(nodes)
    out["queue"] = (
        plots.line_chart(
            title, queue[0].labels, plots.Series("queued", queue[1], plots.COLORS["queue"])
        )
        if queue
        else plots.empty(title)
    )
    return out


def clean(status_dir: Path, keep: Iterable[str] = ("README.md",)) -> None:
    """Remove everything generated under ``status_dir`` (a full regeneration follows)."""
    if not status_dir.is_dir():
        return
    keep = set(keep)
    for child in status_dir.iterdir():
        if child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
