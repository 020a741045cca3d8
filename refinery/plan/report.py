"""The plan as Markdown for people: the pull-request comment, the check run and the
run's step summary all show this one rendering (text only; the CLI decides where it
goes, and the GitHub side only carries it)."""

from __future__ import annotations

from collections.abc import Mapping

from refinery.core.models import NodeStatus, Plan, PlanNode

SECTIONS: tuple[tuple[str, frozenset[NodeStatus]], ...] = (
    ("To build", frozenset({NodeStatus.PENDING, NodeStatus.RETRY})),
    (
        "Known failing",
        frozenset(
            {NodeStatus.SKIPPED_KNOWN_FAILURE, NodeStatus.FAILED, NodeStatus.SYSTEM_RECIPE_FAILED}
        ),
    ),
    ("Missing", frozenset({NodeStatus.MISSING})),
    ("Cached (built by us before)", frozenset({NodeStatus.CACHED, NodeStatus.BUILT})),
    ("Reused (PyPI has an s390x wheel)", frozenset({NodeStatus.REUSED})),
)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").replace("<", "&lt;").split())


def _row(node: PlanNode, hints: Mapping[str, str]) -> str:
    name = f"**{node.name}**" if node.requested else node.name
    wave = "" if node.wave is None else str(node.wave)
    reason = _cell(node.reason)
    hint = hints.get(node.key)
    if hint:
        reason += f" — hint that would apply: `{_cell(hint)}`"
    return f"| {name} | {node.version} | {node.python} | {wave} | {reason} |"


def _section(title: str, nodes: list[PlanNode], hints: Mapping[str, str], fold: bool) -> list[str]:
    table = [
        "| package | version | python | wave | why |",
        "|---|---|---|---|---|",
        *(_row(n, hints) for n in nodes),
    ]
    if fold:
        return [f"<details><summary>{title} ({len(nodes)})</summary>", "", *table, "", "</details>"]
    return [f"#### {title} ({len(nodes)})", "", *table]


def plan_markdown(
    plan: Plan,
    *,
    hints: Mapping[str, str] | None = None,
    run_url: str | None = None,
    marker: str = "",
    collapse_over: int = 20,
) -> str:
    """Counts, then to build / known failing / missing / cached / reused tables.

    ``hints`` maps node keys of known-failing nodes to the hint that would apply;
    sections over ``collapse_over`` rows are folded into ``<details>``; ``marker`` (a
    hidden HTML comment) opens the text when given, so a comment can be found again.
    """
    hints = hints or {}
    counts = plan.counts()
    summary = ", ".join(f"{counts[str(s)]} {s}" for s in NodeStatus if str(s) in counts)
    jobs = len(plan.matrix.get("include", []))
    lines = [marker] if marker else []
    lines += [
        f"### s390x wheel plan `{plan.plan_id}`",
        "",
        f"Inputs: {', '.join(f'`{i}`' for i in plan.inputs) or '—'} · "
        f"targets: {', '.join(f'cp{t.python} {t.platform}' for t in plan.targets)}",
        "",
        f"**{len(plan.nodes)} nodes**: {summary or 'none'}; "
        f"{len(plan.waves)} wave(s), {jobs} build job(s).",
    ]
    for title, statuses in SECTIONS:
        nodes = sorted((n for n in plan.nodes if n.status in statuses), key=lambda n: n.key)
        if nodes:
            lines += ["", *_section(title, nodes, hints, len(nodes) > collapse_over)]
    if run_url:
        lines += ["", f"[Run log]({run_url})"]
    return "\n".join(lines) + "\n"
