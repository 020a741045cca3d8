"""Coverage campaign: build the corpus of real sdist-only packages, count what works.

    python bench/coverage.py [--only markupsafe,ujson] [--store DIR] [--jobs N]
                             [--max-attempts N] [--timeout SECONDS] [--backend auto]
                             [--markdown notes/coverage-table.md] [--verbose]

The corpus is ``bench/coverage.txt`` (``--corpus``; made by ``bench/coverage_corpus.py``).
It is planned with the product's planner against a persistent store (default
``./.refinery/coverage-store``) and built with the product's runner, exactly as
``refinery run`` builds: the backend ``auto`` is ``cross`` on an x86_64 host with the
emulated root as its fallback, the hint catalog advises retries. A node the store has
already built comes out of the plan ``cached`` and is not built again; one that failed
with the same sdist and hint catalog comes out ``skipped_known_failure``: a rerun goes on
where the last one stopped, and the report always covers every node from its record.

Per package: the outcome (the record's status: ``built`` means the repaired wheel
imported in a clean s390x root), the attempts, the fixes of the attempt that built it
(catalog hint ids and, where the record carries them, derived fixes), the build time
(the attempts' durations) and the wheel's tag or the reason it failed. At the end: the
first-try success rate (built by attempt 1), the final success rate, and how many
derived fixes were used. ``--markdown FILE`` writes the same as a Markdown table for
``notes/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from refinery.core.models import normalize_name  # noqa: E402

CORPUS = ROOT / "bench" / "coverage.txt"
STORE = Path(".refinery") / "coverage-store"
PYTHON = "3.11"
PLATFORM = "manylinux_2_28_s390x"
BUILT = "built"
#: Record statuses a finished build ends in (others: interrupted, not counted).
FINISHED = frozenset({BUILT, "failed", "system_recipe_failed", "missing"})


# --- pure: corpus, rows, rates, tables ------------------------------------------------
def parse_corpus(text: str) -> list[tuple[str, str]]:
    """``(name, version)`` of every ``name==version`` line (comments and blanks skipped)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep or not version:
                raise ValueError(f"not a pin: {raw!r}")
            out.append((normalize_name(name.strip()), version.strip()))
    return out


@dataclass(frozen=True)
class Row:
    """One corpus package as its record (or the plan) tells it."""

    name: str
    version: str
    outcome: str  # the record's status; the plan's when there is no record
    attempts: int = 0
    first_try: bool = False
    backend: str = ""
    fixes: tuple[str, ...] = ()  # catalog hint ids of the attempt that built it
    derived: tuple[str, ...] = ()  # derived fixes of that attempt
    seconds: float = 0.0
    wheel: str = ""
    reason: str = ""
    plan: str = ""  # this run's plan decision: pending (built now), cached, ...

    @property
    def built(self) -> bool:
        """The record says built, with its wheel (repaired, imported in a clean root)."""
        return self.outcome == BUILT and bool(self.wheel)

    @property
    def counted(self) -> bool:
        """Whether the row counts in the rates: built or failed in a build here."""
        return self.attempts > 0 and self.outcome in FINISHED


def _derived_texts(attempt: Mapping[str, Any]) -> tuple[str, ...]:
    """Derived fixes of one attempt, read generically: any non-empty field whose name
    contains ``derived``; an item is shown by its ``summary``/``package``/itself."""
    out: list[str] = []
    for key, value in attempt.items():
        if "derived" not in key or not value:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            shown = item
            if isinstance(item, Mapping):
                shown = item.get("summary") or item.get("package") or item.get("requirement")
            if shown:
                out.append(str(shown))
    return tuple(out)


def row_from_record(record: Mapping[str, Any] | None, name: str, version: str, plan: str) -> Row:
    """The row of one package from its record's JSON (``None``: no record, the plan's
    status ``plan`` is the outcome)."""
    if record is None:
        return Row(name, version, plan or "no record", plan=plan)
    attempts: list[Mapping[str, Any]] = list(record.get("attempts") or ())
    status = str(record.get("status", ""))
    built = status == BUILT and bool(record.get("wheel"))
    last = attempts[-1] if attempts else {}
    if built:
        last = next((a for a in reversed(attempts) if a.get("status") == BUILT), last)
    wheel = (record.get("wheel") or {}).get("filename", "") if built else ""
    return Row(
        name=name,
        version=version,
        outcome=status,
        attempts=len(attempts),
        first_try=bool(attempts) and attempts[0].get("status") == BUILT,
        backend=str(last.get("backend", "")),
        fixes=tuple(last.get("hint_ids") or ()),
        derived=_derived_texts(last),
        seconds=sum(float(a.get("duration") or 0.0) for a in attempts),
        wheel=wheel,
        reason="" if built else str(record.get("reason") or last.get("reason") or ""),
        plan=plan,
    )


@dataclass(frozen=True)
class Rates:
    measured: int  # rows built or failed here
    first_try: int
    final: int
    derived: int  # derived fixes in the attempts that built
    corpus: int

    @staticmethod
    def percent(part: int, whole: int) -> str:
        return f"{100.0 * part / whole:.1f} %" if whole else "-"

    def lines(self) -> list[str]:
        return [
            f"measured: {self.measured} of {self.corpus} corpus packages",
            f"first-try success: {self.first_try}/{self.measured} "
            f"({self.percent(self.first_try, self.measured)})",
            f"final success: {self.final}/{self.measured} "
            f"({self.percent(self.final, self.measured)})",
            f"derived fixes used: {self.derived}",
        ]


def rates(rows: Sequence[Row]) -> Rates:
    measured = [r for r in rows if r.counted]
    return Rates(
        measured=len(measured),
        first_try=sum(1 for r in measured if r.built and r.first_try),
        final=sum(1 for r in measured if r.built),
        derived=sum(len(r.derived) for r in measured if r.built),
        corpus=len(rows),
    )


def wheel_tag(wheel: str) -> str:
    return wheel.removesuffix(".whl").rsplit("-", 1)[-1] if wheel else ""


def _cells(row: Row) -> tuple[str, ...]:
    # a derived fix's hint id (derived:<package>) already names it
    extra = (f"derived: {d}" for d in row.derived if f"derived:{d}" not in row.fixes)
    fixes = ", ".join((*row.fixes, *extra)) or "-"
    detail = wheel_tag(row.wheel) if row.built else (row.reason.splitlines() or [""])[0]
    earlier = EARLIER.get(row.plan) if row.attempts else None
    return (
        f"{row.name}=={row.version}",
        f"{row.outcome} ({earlier})" if earlier else row.outcome,
        str(row.attempts),
        row.backend or "-",
        fixes,
        f"{row.seconds:.0f}" if row.attempts else "-",
        detail or "-",
    )


#: Plan decisions that mean the record is from an earlier run (shown after the outcome).
EARLIER = {"cached": "earlier run", "skipped_known_failure": "earlier run, not retried"}
HEADINGS = ("package", "outcome", "attempts", "backend", "fixes", "seconds", "wheel tag / why")


def render_text(rows: Sequence[Row], summary: Rates) -> str:
    cells = [HEADINGS, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADINGS) - 1)]
    lines = [
        "  ".join(c[i].ljust(w) for i, w in enumerate(widths)) + "  " + c[-1][:110] for c in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join([*lines, "", *summary.lines()])


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: Sequence[Row], summary: Rates, title: str = "") -> str:
    head = [f"## {title}", ""] if title else []
    table = [
        "| " + " | ".join(HEADINGS) + " |",
        "|" + "---|" * len(HEADINGS),
        *("| " + " | ".join(_md(c) for c in _cells(r)) + " |" for r in rows),
    ]
    rates_md = [f"- {line}" for line in summary.lines()]
    return "\n".join([*head, *table, "", *rates_md]) + "\n"


# --- the campaign ---------------------------------------------------------------------
def select(corpus: Sequence[tuple[str, str]], only: Iterable[str]) -> list[tuple[str, str]]:
    """The corpus entries named in ``only`` (all when empty); an unknown name is an error."""
    wanted = {normalize_name(n) for n in only if n.strip()}
    unknown = wanted - {name for name, _ in corpus}
    if unknown:
        raise SystemExit(f"not in the corpus: {', '.join(sorted(unknown))}")
    return [e for e in corpus if not wanted or e[0] in wanted]


def _settings(args: argparse.Namespace) -> Any:
    from refinery.cli.app import Settings
    from refinery.upstream.simple import DEFAULT_INDEX

    return Settings.read(
        store=str(args.store),
        backend=args.backend,
        index_url=os.environ.get("REFINERY_INDEX_URL", DEFAULT_INDEX),
        cache_dir=None,
        environ=os.environ,
        home=Path.home(),
    )


def _renderer(verbose: bool) -> Any:
    """Build events on stderr, the build output only with ``--verbose``."""
    from rich.console import Console

    from refinery.cli.render import event_markup

    console = Console(stderr=True, highlight=False)

    def on_event(event: Any) -> None:
        if event.kind != "line" or verbose:
            console.print(event_markup(event), soft_wrap=True)

    return on_event


def campaign(args: argparse.Namespace, entries: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Plan the corpus on the store, build the selected pending nodes with the product's
    runner (``refinery run``'s parts), and return the plan's status per corpus name."""
    from refinery.builder.runner import build_plan
    from refinery.cli.build import BuildFlags
    from refinery.cli.plan import make_plan

    settings = _settings(args)
    hints = ROOT / "hints"
    plan = make_plan(settings, [args.corpus], pythons=(PYTHON,), platform=PLATFORM, hints_dir=hints)
    statuses = {(n.name, n.version): str(n.status) for n in plan.nodes if n.python == PYTHON}
    flags = BuildFlags(
        jobs=args.jobs,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        hints_dir=hints,
        retry_backoff=0.0,
        release=None,
        image=None,
        installer="auto",
        nodes=tuple(f"{name}=={version}" for name, version in entries),
    )
    root, advisor = flags.root_and_advisor(settings)
    options = flags.run_options(settings, advisor.catalog.digest)
    if args.no_package_tests:  # "built" = imported in a clean root, as in run 1
        options = dataclasses.replace(options, tests=None)
    build_plan(
        plan,
        settings.open_store(),
        root,
        options,
        on_event=_renderer(args.verbose),
        advise=advisor,
        first_fix=advisor.first_fix,
        fallback=flags.fallback(settings, root, advisor),
    )
    return {name: statuses.get((name, version), "not planned") for name, version in entries}


def report(
    args: argparse.Namespace, entries: Sequence[tuple[str, str]], plan: Mapping[str, str]
) -> list[Row]:
    from refinery.store import Store

    store = Store.open(str(args.store))
    rows = []
    for name, version in entries:
        record = store.get_record(name, version, PYTHON)
        rows.append(
            row_from_record(record.to_json() if record else None, name, version, plan[name])
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--store", type=Path, default=STORE, help=f"default ./{STORE}")
    parser.add_argument("--only", default="", metavar="NAMES", help="comma-separated names")
    parser.add_argument("--jobs", type=int, default=1, help="builds in parallel per wave")
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per attempt")
    parser.add_argument("--backend", default="auto", help="auto (default), cross, rootfs, …")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--report-only", action="store_true", help="no builds: the records")
    parser.add_argument(
        "--no-package-tests",
        action="store_true",
        help="skip the catalog's package tests (numpy's take ~15 min under emulation)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the build output")
    args = parser.parse_args(argv)
    entries = select(parse_corpus(args.corpus.read_text()), args.only.split(","))
    plan = {name: "" for name, _ in entries} if args.report_only else campaign(args, entries)
    rows = report(args, entries, plan)
    summary = rates(rows)
    print(f"coverage: CPython {PYTHON}, {PLATFORM}, store {args.store}")
    print(render_text(rows, summary))
    if args.markdown is not None:
        title = f"Coverage: {args.corpus.name}, CPython {PYTHON}, {PLATFORM}"
        args.markdown.write_text(render_markdown(rows, summary, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
