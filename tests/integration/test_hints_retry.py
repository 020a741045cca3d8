"""The hint -> retry loop for real: the zlib fixture under emulation in the rootfs root.

The cached Debian root has zlib1g-dev (python3-dev pulls it in), so every throwaway
session of this test's root first removes it (``dpkg --remove --force-depends``): a root
without zlib1g-dev. Attempt 1 fails on ``zlib.h``, the ``zlib`` hint of the real catalog
matches, attempt 2 installs zlib1g-dev with apt in its own fresh root and succeeds.
Needs root, qemu-user-static + binfmt_misc, the cached root filesystem and the Debian
mirror (apt-get inside the root).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fixtures.buildroot import host_build_options
from fixtures.sdists import make_sdist

from refinery.builder.artifacts import sha256_file
from refinery.builder.options import RunOptions
from refinery.builder.rootfs import RootfsRoot
from refinery.builder.roots import Mounts
from refinery.builder.runner import BuildEvent, build_plan
from refinery.core.models import FileRef, NodeStatus, Plan, PlanNode, Target
from refinery.hints import catalog_digest, load_catalog
from refinery.hints.advise import Advisor, RetrySettings
from refinery.hints.learn import add_entries, learned_from_records
from refinery.store import Store

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "zlibext"
HINTS = REPO / "hints"
REMOVE_ZLIB = "dpkg --remove --force-depends zlib1g-dev >/dev/null && test ! -e /usr/include/zlib.h"


class WithoutZlibDev:
    """The rootfs root, but every build session starts without zlib1g-dev."""

    def __init__(self, inner: RootfsRoot) -> None:
        self.inner = inner
        self.removed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def build_session(self, mounts: Mounts, target_platform: str | None = None) -> Iterator[Any]:
        with self.inner.build_session(mounts, target_platform) as session:
            result = session.run(["sh", "-c", REMOVE_ZLIB])
            assert result.ok, result.tail
            self.removed += 1
            yield session

    def smoke_session(self, mounts: Mounts) -> contextlib.AbstractContextManager[Any]:
        return self.inner.smoke_session(mounts)


def zlib_node(sdist: Path) -> PlanNode:
    return PlanNode(
        "refinery-fixture-zlib",
        "0.1.0",
        "3.11",
        NodeStatus.PENDING,
        "",
        True,
        wave=0,
        sdist=FileRef(sdist.name, sdist.as_uri(), sha256_file(sdist)),
    )


def test_zlib_fixture_fails_then_the_hint_fixes_it(rootfs_root: RootfsRoot, tmp_path: Path) -> None:
    sdist = make_sdist(FIXTURE, tmp_path / "sdist")
    node = zlib_node(sdist)
    digest = catalog_digest(HINTS)
    plan = Plan("zlib-retry", (), (Target(),), (node,), ((node.key,),), {}, catalog_digest=digest)
    store = Store.open(str(tmp_path / "store"))
    catalog = load_catalog(HINTS)
    advisor = Advisor(catalog, "apt", RetrySettings(max_attempts=3, backoff=0.0))
    root = WithoutZlibDev(rootfs_root)
    events: list[BuildEvent] = []

    options = RunOptions(
        build=host_build_options(),
        max_attempts=3,
        catalog_digest=digest,
        workdir=tmp_path / "run",
    )
    summary = build_plan(
        plan,
        store,
        root,  # type: ignore[arg-type]
        options,
        advise=advisor,
        first_fix=advisor.first_fix,
        on_event=events.append,
    )

    (result,) = summary.results
    record = store.get_record(node.name, node.version, node.python)
    assert record is not None
    # keep the record next to the test output for humans (and the closing report)
    (tmp_path / "record.json").write_text(json.dumps(record.to_json(), indent=2))
    print(json.dumps(record.to_json(), indent=2))
    assert result.status is NodeStatus.BUILT, (result.reason, record.to_json())
    assert root.removed == 2  # both attempts ran in a fresh root without zlib1g-dev
    first, second = record.attempts
    assert first.status == "failed" and first.hint_ids == () and first.recipes == ()
    assert any("zlib.h: No such file or directory" in line for line in first.matched_lines)
    assert second.status == "built"
    assert second.hint_ids == ("zlib",)
    assert second.recipes == ("apt: zlib1g-dev",)
    assert record.status is NodeStatus.BUILT and record.wheel is not None
    assert record.catalog_digest == digest and record.sdist_sha256 == node.sdist.sha256  # type: ignore[union-attr]
    assert [e.kind for e in record.events].count("retry") == 1
    retry = next(e for e in record.events if e.kind == "retry")
    assert "zlib" in retry.message and "apt: zlib1g-dev" in retry.message
    log1 = store.blobs.get(first.log or "")
    log2 = store.blobs.get(second.log or "")
    assert log1 is not None and b"fatal error: zlib.h: No such file or directory" in log1[0]
    assert log2 is not None and b"==> recipes: apt: zlib1g-dev" in log2[0]
    (decision,) = advisor.decisions
    assert decision.applied == ("zlib",) and decision.attempt == 1
    assert [e.kind for e in events].count("retry") == 1
    data = store.get_wheel(record.wheel)
    assert data is not None
    wheel = tmp_path / record.wheel.filename
    wheel.write_bytes(data)
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.startswith("refinery_fixture_zlib/_zcrc") for n in zf.namelist())

    # Learning: the record is package-level evidence; the entry it yields makes the next
    # build apply zlib1g-dev before the first attempt.
    learned = learned_from_records([record], catalog)
    assert [(item.package, item.hints) for item in learned] == [
        ("refinery-fixture-zlib", ("zlib",))
    ]
    hints_dir = tmp_path / "hints"
    shutil.copytree(HINTS, hints_dir)
    (hints_dir / "learned.yaml").write_text(add_entries("", learned))
    again = Advisor(load_catalog(hints_dir), "apt")
    first_fix = again.first_fix(node)
    assert first_fix is not None and first_fix.system_packages == ("zlib1g-dev",)
