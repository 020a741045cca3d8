"""Turning results into text for people: terminal tables, GitHub Actions markup.

Only the CLI imports this module; the library never prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
