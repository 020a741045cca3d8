"""The build commands' view of a run: what it will build (and how long that took
before), and at its end a table of results and, per failure, its cause, its log and the
command that reproduces it."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from refinery.builder.runner import NodeResult, RunSummary, selected
from refinery.cli.live import FAILED, LiveRenderer, Renderer, View, make_renderer
from refinery.cli.render import (
    ResultRow,
    failure_markup,
    make_console,
    on_github_actions,
    results_table,
)
from refinery.core.models import (
    BuildRecord,
    NodeStatus,
    Plan,
    PlanNode,
    normalize_name,
    parse_node_key,
)
from refinery.store import Store

#: Records of other versions read per node for a duration, when the node has none.
SIBLINGS = 3


@dataclass(frozen=True, kw_only=True)
class Report:
    """Where a run writes and how its nodes are built again by hand."""

    store: Store
    store_option: str | None  # ``--store`` as given (None: the default store)
    plan: str  # the plan file for ``refinery build`` ('' : name it by its id)
    plan_id: str = ""

    def record(self, key: str) -> BuildRecord | None:
        return self.store.get_record(*parse_node_key(key))

    def whole_log(self, key: str) -> str | None:
        """Where the node's last stored log is (a path or URL), if any."""
        record = self.record(key)
        logs = [a.log for a in record.attempts if a.log] if record else []
        return self.store.log_location(logs[-1]) if logs else None

    def reproduce(self, key: str, backend: str) -> str:
        plan = self.plan or "PLAN.json"
        words = ["refinery", "build", plan, "--node", key]
        if backend:
            words += ["--backend", backend]
        if self.store_option:
            words += ["--store", self.store_option]
        words.append("-v")
        command = shlex.join(words)
        if not self.plan and self.plan_id:
            command += f"  # PLAN.json: plan {self.plan_id} of {self.store.url}"
        return command


def renderer(report: Report, *, max_attempts: int, jobs: int, verbose: bool) -> Renderer:
    """The renderer for this console (see :func:`refinery.cli.live.make_renderer`)."""
    view = View(
        console=make_console(stderr=True, highlight=False),
        max_attempts=max_attempts,
        jobs=jobs,
        verbose=verbose,
        gha=on_github_actions(),
        whole_log=report.whole_log,
    )
    return make_renderer(view)


def _normal(item: str) -> str:
    name, sep, rest = item.strip().partition("==")
    return f"{normalize_name(name)}{sep}{rest}"


def to_build(plan: Plan, only: Collection[str] | None) -> list[PlanNode]:
    """The plan's nodes a run builds: pending ones (those ``--node`` names, if any)."""
    wanted = {_normal(item) for item in only} if only else None
    return [
        n
        for n in plan.nodes
        if n.status is NodeStatus.PENDING and (wanted is None or selected(n, wanted))
    ]


def expect(render: Renderer, plan: Plan, store: Store, only: Collection[str] | None) -> None:
    """Tell the renderer what the run builds; the live view's estimate reads earlier
    durations from the store meanwhile (a thread: a large S3 store takes a while)."""
    nodes = to_build(plan, only)
    render.expect(n.key for n in nodes)
    if isinstance(render, LiveRenderer):

        def learn() -> None:
            try:
                render.board.learn(history(store, nodes))
            except Exception:  # an estimate is optional; the build is not
                return

        threading.Thread(target=learn, name="refinery-eta", daemon=True).start()


def _duration(record: BuildRecord | None) -> float | None:
    """The last built attempt's duration, else the longest attempt's."""
    if record is None:
        return None
    built = [a.duration for a in record.attempts if a.duration and a.status == "built"]
    tried = [a.duration for a in record.attempts if a.duration]
    return built[-1] if built else (max(tried) if tried else None)


def history(store: Store, nodes: Sequence[PlanNode]) -> dict[str, float]:
    """Seconds each node took before: its own record's, else another version's (same
    Python) — the estimate of how long it takes now."""
    out: dict[str, float] = {}
    for node in nodes:
        took = _duration(store.get_record(node.name, node.version, node.python))
        if took is None:
            others = [
                r
                for r in store.record_ids(node.name)
                if r.python == node.python and r.version != node.version
            ]
            for other in others[-SIBLINGS:]:
                took = _duration(store.get_record(*other)) or took
        if took is not None:
            out[node.key] = took
    return out


def _row(result: NodeResult, render: Renderer, report: Report) -> ResultRow:
    seconds = render.board.seconds.get(result.key)
    if seconds is None and result.outcome is not None:
        seconds = result.outcome.durations.total
    row = ResultRow(
        node=result.key,
        status=result.status,
        seconds=seconds,
        wheel=result.wheel.filename if result.wheel else "",
    )
    if result.status not in FAILED:
        return row
    record = report.record(result.key)
    last = record.attempts[-1] if record and record.attempts else None
    log = report.store.log_location(last.log) if last and last.log else ""
    backend = last.backend if last else ""
    cause = (record.reason if record else "") or result.reason
    return ResultRow(
        node=row.node,
        status=row.status,
        seconds=row.seconds,
        cause=cause,
        log=log,
        reproduce=report.reproduce(result.key, backend),
    )


def print_results(render: Renderer, summary: RunSummary, report: Report) -> None:
    """The table of results, each failure's cause, log and reproduce command, counts."""
    console = make_console(stderr=True)
    rows = [_row(result, render, report) for result in summary.results]
    if rows:
        console.print(results_table(rows))
    for row in rows:
        if row.status in FAILED:
            console.print(failure_markup(row), soft_wrap=True)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts().items())) or "nothing"
    console.print(f"build: {counts} (store {report.store.url})", soft_wrap=True)
