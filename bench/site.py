"""Status site at scale: a synthetic store of N packages (default 10,000), then

1. a full build (generate every page + ``mkdocs build``, strict),
2. an incremental build after one record changed,
3. an incremental build with nothing changed.

Then the site's size as built (full logs stay in the store: pages keep the highlighted
excerpt and link the store or name ``refinery logs``) and as it would be with every full
log copied into it (``--copy-logs``), against GitHub Pages' 1 GB. ``--log-kib K`` makes
the synthetic logs K KiB on average (real stored logs here: median 17 KiB, mean 50 KiB).

Prints one line per measurement.
Usage: ``python bench/site.py [--packages N] [--log-kib K] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fixtures.sitestore import (  # noqa: E402
    ZLIB_ERROR,
    build_log,
    site_project,
    ts,
    write_synthetic_store,
)

from refinery.core.models import Attempt, NodeStatus  # noqa: E402
from refinery.site import SiteOptions, build_site  # noqa: E402
from refinery.site.generate import log_keys  # noqa: E402
from refinery.site.model import load  # noqa: E402
from refinery.store import Store  # noqa: E402

PAGES_LIMIT = 1 << 30  # GitHub Pages: a published site of at most 1 GB
LINE_BYTES = 42  # about, of a synthetic log line (build_log)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def sizes(store: Store, site: Path) -> str:
    """The site's size, its logs' size, and the sum (a site that copied every log)."""
    built = folder_bytes(site)
    logs = 0
    for key in log_keys(load(store).packages.values()):
        got = store.get_log(key)
        logs += len(got) if got is not None else 0
    mb = 1 << 20
    verdict = "fits" if built + logs <= PAGES_LIMIT else "does NOT fit"
    return (
        f"site size: {built / mb:.0f} MB as built (logs in the store); logs {logs / mb:.0f} MB; "
        f"with every log copied {(built + logs) / mb:.0f} MB ({verdict} in GitHub Pages' 1 GB)"
    )


def change_one(store: Store) -> str:
    """Give pkg00042 a new failed attempt (a retry that did not help)."""
    rec = next(r for r in store.records() if r.name == "pkg00042")
    n = len(rec.attempts) + 1
    log = store.put_log(
        rec.name, rec.version, rec.python, n, build_log(rec.name, rec.version, fail=ZLIB_ERROR)
    )
    attempt = Attempt(
        n,
        ts(99_000),
        ts(99_001),
        61.0,
        "rootfs",
        hint_ids=("zlib",),
        exit=1,
        log=log,
        status="failed",
        matched_lines=(ZLIB_ERROR,),
    )
    store.update_record(
        rec.name,
        rec.version,
        rec.python,
        lambda r: r.evolve(status=NodeStatus.FAILED, attempts=(*r.attempts, attempt)).with_event(  # type: ignore[union-attr]
            ts(99_001), "failed", "build failed"
        ),
    )
    return rec.key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--log-kib", type=float, default=0, help="mean synthetic log size")
    parser.add_argument(
        "--keep", type=Path, help="work here and keep it; an existing store there is reused"
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-site-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        if (work / "store" / "records").is_dir():
            store = Store.open(str(work / "store"))
            how = "reused"
        else:
            mean = int(args.log_kib * 1024 / LINE_BYTES) if args.log_kib else 220
            lines = (40, max(41, 2 * mean - 40))  # uniform: mean ≈ ``mean`` lines
            store = write_synthetic_store(work / "store", args.packages, log_lines=lines)
            how = "written"
        records = sum(1 for _ in store.record_ids())
        print(f"store: {records} records {how} in {time.perf_counter() - t:.1f}s")
        for old in ("project", "site"):
            shutil.rmtree(work / old, ignore_errors=True)
        docs, config = site_project(work / "project")
        site = work / "site"
        options = SiteOptions(pip_index="https://wheels.example/simple/")

        def run(label: str) -> None:
            t = time.perf_counter()
            r = build_site(store, docs_dir=docs, site_dir=site, config_file=config, options=options)
            wall = time.perf_counter() - t
            print(
                f"{label}: {wall:.1f}s {r.mode} (read {r.load_seconds:.1f}s, generate "
                f"{r.generate_seconds:.1f}s, mkdocs {r.mkdocs_seconds:.1f}s; "
                f"{len(r.generated.written)} pages written)"
            )

        run("full build")
        key = change_one(store)
        run(f"incremental after {key} changed")
        run("incremental, nothing changed")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        pages = sum(1 for _ in site.rglob("*.html"))
        print(f"site: {pages} html pages; peak RSS {rss:.0f} MB; work dir {work}")
        print(sizes(store, site))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
