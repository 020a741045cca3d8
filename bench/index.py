"""Index speed: a synthetic store of 100,000 wheels in 10,000 projects, rendered in full
and then incrementally after one project changes. Prints both times and their ratio.

    python bench/index.py [--projects 10000] [--versions 10] [--dir DIR]

The store is written directly in the store layout (records, wheels, PEP 658 metadata);
its project summaries are derived once by a first full run (setup, not measured). Then:

* full: ``refinery index --full`` into an empty folder: reads and checks all 100,000
  records against the summaries and renders every page into a new tree;
* incremental: one project gains a version through the ledger (``put_wheel`` +
  ``update_record``, which refreshes its summary), then a plain ``refinery index``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.wheels import good_wheel

from refinery.core.models import BuildRecord, NodeStatus, WheelRef
from refinery.index import Index
from refinery.store import Store

TAG = "cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x"


def synth(root: Path, projects: int, versions: int) -> None:
    for p in range(projects):
        name = f"proj-{p:05d}"
        dist = name.replace("-", "_")
        for v in range(versions):
            version = f"1.{v}"
            filename = f"{dist}-{version}-{TAG}.whl"
            data = f"wheel {name} {version}".encode()
            sha = hashlib.sha256(data).hexdigest()
            meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            meta += "Requires-Python: >=3.8\n\n"
            wdir = root / "wheels" / sha
            wdir.mkdir(parents=True)
            (wdir / filename).write_bytes(data)
            (wdir / f"{filename}.metadata").write_text(meta)
            ref = WheelRef(filename, sha, len(data))
            rec = BuildRecord(name, version, "3.11", NodeStatus.BUILT, wheel=ref, updated="2025")
            rdir = root / "records" / name / version
            rdir.mkdir(parents=True)
            (rdir / "3.11.json").write_text(json.dumps(rec.to_json()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="refinery-bench-index-"))
    base.mkdir(parents=True, exist_ok=True)
    store_dir = base / "store"
    try:
        t = time.perf_counter()
        if not (store_dir / "records").exists():
            synth(store_dir, args.projects, args.versions)
        store = Store.open(str(store_dir))
        Index(store, base / "warm").build(full=True)  # derives the summaries once
        setup = time.perf_counter() - t
        wheels = args.projects * args.versions
        print(f"store: {wheels} wheels in {args.projects} projects (setup {setup:.1f} s)")

        out = base / "out"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        full = Index(store, out).build(full=True)
        full_s = time.perf_counter() - t
        assert full.projects == args.projects and full.files >= wheels, full

        new_version = f"9.{time.time_ns()}"  # a version this store has not seen
        wheel = good_wheel(base / "new", "proj-00042", new_version, TAG)
        ref = store.put_wheel(wheel)
        store.update_record(
            "proj-00042",
            new_version,
            "3.11",
            lambda _c: BuildRecord("proj-00042", new_version, "3.11", NodeStatus.BUILT, wheel=ref),
        )
        t = time.perf_counter()
        inc = Index(store, out).build()
        inc_s = time.perf_counter() - t
        assert inc.rendered == ("proj-00042",) and inc.files == full.files + 1, inc
        assert new_version in (out / "simple/proj-00042/index.html").read_text()

        t = time.perf_counter()
        Index(store, out).build()
        noop_s = time.perf_counter() - t
        print(f"full index: {full_s:.2f} s ({full.projects} projects, {full.files} files)")
        print(f"incremental index after one project changed: {inc_s * 1000:.1f} ms")
        print(f"incremental index, nothing changed: {noop_s * 1000:.1f} ms")
        print(f"ratio incremental/full: {inc_s / full_s:.4%} (target <= 1%)")
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
