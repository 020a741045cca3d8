"""Regenerate the coverage corpus, ``bench/coverage.txt``, with the planner itself.

    python bench/coverage_corpus.py [--output bench/coverage.txt] [--check]

Plans ``bench/requirements-300.txt`` together with ``bench/coverage-candidates.in`` (one
resolution, so every pin fits every other) for CPython 3.11 on ``manylinux_2_28_s390x``
against real PyPI, with the ``refinery plan`` stage and an empty throwaway store (so no
node comes out ``cached``), and keeps every node that comes out ``pending``: PyPI has no
wheel that installs there, so the farm must build it. The few nodes in :data:`EXCLUDED`
are left out, each with its reason in the file's header. ``--check`` prints what the file
would hold and whether it differs, without writing. Needs PyPI.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from refinery.cli.app import Settings  # noqa: E402
from refinery.cli.plan import make_plan  # noqa: E402
from refinery.core.models import NodeStatus, Plan  # noqa: E402
from refinery.upstream.simple import DEFAULT_INDEX  # noqa: E402

INPUTS = (ROOT / "bench" / "requirements-300.txt", ROOT / "bench" / "coverage-candidates.in")
OUTPUT = ROOT / "bench" / "coverage.txt"
PYTHON = "3.11"
PLATFORM = "manylinux_2_28_s390x"
#: Pending nodes left out of the corpus, and why (shown in the corpus header).
EXCLUDED = {
    "grpcio": "a C++ build of vendored BoringSSL, abseil and protobuf: about an hour on "
    "two cores, as long as the rest of the corpus; measured on its own",
    "opencv-python-headless": "a CMake build of all of OpenCV: over an hour on two cores; "
    "measured on its own",
}


def pending_pins(plan: Plan) -> list[str]:
    """``name==version`` of every pending node (one per project and version), sorted."""
    pins = {
        f"{n.name}=={n.version}"
        for n in plan.nodes
        if n.status is NodeStatus.PENDING and n.name not in EXCLUDED
    }
    return sorted(pins, key=str.lower)


def corpus_text(plan: Plan, pins: list[str], when: str) -> str:
    """The corpus file: a header saying how and when it was chosen, then the pins."""
    counts = plan.counts()
    inputs = " + ".join(str(p.relative_to(ROOT)) for p in INPUTS)
    header = [
        "# Coverage corpus (issue 12): real PyPI releases that have no s390x wheel.",
        f"# Chosen by the planner on {when} by bench/coverage_corpus.py:",
        f"# `refinery plan {inputs}`, CPython {PYTHON}, {PLATFORM}, PyPI,",
        "# an empty store; every node that came out `pending` is kept.",
        f"# The plan: {len(plan.nodes)} nodes, "
        + ", ".join(f"{counts[s]} {s}" for s in NodeStatus if s in counts)
        + f"; {len(pins)} pins here from {len({p.split('==')[0] for p in pins})} projects.",
        "# Left out (pending too):",
        *(f"#   {name}: {why}" for name, why in EXCLUDED.items()),
        "# Build it with: python bench/coverage.py (see its --help).",
    ]
    return "\n".join([*header, *pins]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="Print, do not write.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coverage-corpus-") as tmp:
        settings = Settings.read(
            store=str(Path(tmp) / "store"),
            backend="auto",
            index_url=os.environ.get("REFINERY_INDEX_URL", DEFAULT_INDEX),
            cache_dir=None,
            environ=os.environ,
            home=Path.home(),
        )
        plan = make_plan(
            settings, INPUTS, pythons=(PYTHON,), platform=PLATFORM, hints_dir=ROOT / "hints"
        )
    pins = pending_pins(plan)
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    text = corpus_text(plan, pins, when)
    if args.check:
        old = args.output.read_text() if args.output.exists() else ""
        same = [x for x in old.splitlines() if not x.startswith("#")] == pins
        print(text, end="")
        print(f"# {'same pins as' if same else 'differs from'} {args.output}", file=sys.stderr)
        return 0
    args.output.write_text(text)
    print(f"{args.output}: {len(pins)} pins", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
