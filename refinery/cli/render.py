"""Turning results into text for people: terminal tables, GitHub Actions markup.

Only the CLI imports this module; the library never prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from refinery.core.models import NodeStatus, Plan

STATUS_STYLE = {
    NodeStatus.REUSED: "green",
    NodeStatus.CACHED: "green",
    NodeStatus.BUILT: "bold green",
    NodeStatus.PENDING: "yellow",
    NodeStatus.MISSING: "red",
    NodeStatus.FAILED: "bold red",
    NodeStatus.SKIPPED_KNOWN_FAILURE: "magenta",
    NodeStatus.SYSTEM_RECIPE_FAILED: "bold red",
}


#: Width of output that is not a terminal when nobody says how wide it is (a CI log, a
#: pipe): wide enough that no table cell folds; a log viewer scrolls, a folded cell is
#: unreadable.
PLAIN_WIDTH = 10_000


def make_console(
    *,
    stderr: bool = False,
    file: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> Console:
    """A console for people: a terminal keeps its width; elsewhere the width the CI gives
    (``COLUMNS``), else :data:`PLAIN_WIDTH`, never rich's 80 columns."""
    console = Console(stderr=stderr, file=file, **options)
    if not console.is_terminal:
        columns = (os.environ if environ is None else environ).get("COLUMNS", "")
        console.width = int(columns) if columns.isdigit() and int(columns) > 0 else PLAIN_WIDTH
    return console


def on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def gha_escape(value: str, *, prop: bool = False) -> str:
    """Escape data for a workflow command (``::error file=…::message``)."""
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"plan {plan.plan_id}", title_justify="left", expand=False)
    for col in ("package", "version", "python", "status", "wave", "reason"):
        table.add_column(col, overflow="fold")
    order = {s: i for i, s in enumerate(NodeStatus)}
    for n in sorted(plan.nodes, key=lambda n: (order[n.status], n.name, n.version, n.python)):
        name = f"[bold]{n.name}[/]" if n.requested else n.name
        style = STATUS_STYLE.get(n.status, "")
        wave = "" if n.wave is None else str(n.wave)
        table.add_row(name, n.version, n.python, f"[{style}]{n.status}[/]", wave, n.reason)
    return table


class Event(Protocol):
    """What the renderer reads of a build runner's progress event."""

    @property
    def kind(self) -> str: ...
    @property
    def node(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def status(self) -> NodeStatus | None: ...


def event_markup(event: Event) -> str:
    """One progress line: the kind as a coloured label, the node, the message. A message
    that starts with its kind (``wave 0: 3 node(s)``) is not labelled twice."""
    status = event.status
    style = STATUS_STYLE.get(status, "cyan") if status is not None else "cyan"
    message = event.message
    if message == event.kind or message.startswith(f"{event.kind} "):
        message = message[len(event.kind) :].lstrip(" ")
    label = f"[{style}]{escape(event.kind)}[/]"
    where = f" [bold]{escape(event.node)}[/]" if event.node else ""
    return f"{label}{where} {escape(message)}".rstrip(" ")


def plan_summary(plan: Plan) -> str:
    counts = plan.counts()
    parts = [f"{counts[s]} {s}" for s in NodeStatus if s in counts]
    waves = len(plan.waves)
    jobs = len(plan.matrix.get("include", []))
    return f"{len(plan.nodes)} nodes: {', '.join(parts)}; {waves} waves, {jobs} matrix jobs"


@contextmanager
def progress_reporter(console: Console) -> Iterator[Progress | None]:
    """A live progress display on a terminal; nothing elsewhere."""
    if not console.is_terminal:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        yield progress


# --- the end of a build run -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResultRow:
    """One node of a finished run, for people: what came of it, in what time, and for a
    failure why, where its log is and how to build it again."""

    node: str
    status: NodeStatus
    seconds: float | None = None
    wheel: str = ""  # the wheel's filename
    cause: str = ""  # the root-cause line (the record's reason)
    log: str = ""  # the last attempt's log: a path, or a URL in the store
    reproduce: str = ""  # the command that builds this node alone, with its output


def wheel_tag(filename: str) -> str:
    """``cp311-cp311-manylinux_2_17_s390x`` of a wheel's filename ('' for none)."""
    if not filename.endswith(".whl"):
        return ""
    parts = filename[: -len(".whl")].split("-")
    return "-".join(parts[-3:]) if len(parts) >= 5 else ""


def _took(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)  # as the live view's clock: whole seconds, cut
    return f"{whole // 60}:{whole % 60:02d}" if whole >= 60 else f"{whole}s"


def results_table(rows: Sequence[ResultRow]) -> Table:
    """Node, result, time, wheel tag: one row per node the run built or tried."""
    table = Table(title="builds", title_justify="left", expand=False)
    for col in ("node", "result", "time", "wheel tag"):
        table.add_column(col, overflow="fold")
    for row in rows:
        style = STATUS_STYLE.get(row.status, "")
        table.add_row(
            escape(row.node),
            f"[{style}]{row.status}[/]",
            _took(row.seconds),
            escape(wheel_tag(row.wheel)),
        )
    return table


def failure_markup(row: ResultRow) -> str:
    """A failed node: its cause line, its log, the command that reproduces it."""
    style = STATUS_STYLE.get(row.status, "red")
    lines = [f"[{style}]✗ {row.status}[/] [bold]{escape(row.node)}[/]"]
    if row.cause:
        lines.append(f"  cause: {escape(row.cause.splitlines()[0])}")
    if row.log:
        lines.append(f"  log: {escape(row.log)}")
    if row.reproduce:
        lines.append(f"  reproduce: {escape(row.reproduce)}")
    return "\n".join(lines)
