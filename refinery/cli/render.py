"""Turning results into text for people: terminal tables, GitHub Actions markup.

Only the CLI imports this module; the library never prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
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


def plan_summary(plan: Plan) -> str:
    counts = plan.counts()
    parts = [f"{counts[s]} {s}" for s in NodeStatus if s in counts]
    waves = len(plan.waves)
    jobs = len(plan.matrix.get("include", []))
    return f"{len(plan.nodes)} nodes: {', '.join(parts)}; {waves} waves, {jobs} matrix jobs"


def plan_markdown(plan: Plan) -> str:
    """The plan as a Markdown table (PR comment, step summary)."""
    lines = [
        f"### Build plan `{plan.plan_id}`",
        "",
        plan_summary(plan),
        "",
        "| package | version | python | status | wave | reason |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted(plan.nodes, key=lambda n: (str(n.status), n.name)):
        reason = n.reason.replace("|", "\\|")
        name = f"**{n.name}**" if n.requested else n.name
        wave = "" if n.wave is None else str(n.wave)
        lines.append(f"| {name} | {n.version} | {n.python} | `{n.status}` | {wave} | {reason} |")
    return "\n".join(lines) + "\n"


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
