"""The status site answers "which builds failed on `lber.h`": the failures page holds
each failed build's root cause and highlighted lines, ``mkdocs build --strict`` passes,
and the site's search index (MkDocs material's built-in search) has them per build."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.sitestore import ZLIB_ERROR, site_project, write_demo_store

from refinery.core.models import Attempt, BuildRecord, NodeStatus
from refinery.site import SiteOptions, build_site

LBER = "Modules/common.h:15:10: fatal error: lber.h: No such file or directory"


def test_failure_excerpts_are_searchable(tmp_path: Path) -> None:
    store = write_demo_store(tmp_path / "store")
    key = store.put_log("python-ldap", "3.4.4", "3.11", 1, f"==> build\n{LBER}\n".encode())
    record = BuildRecord(
        name="python-ldap",
        version="3.4.4",
        python="3.11",
        status=NodeStatus.FAILED,
        reason=f"{LBER} (log line 2; build exited 1)",
        attempts=(
            Attempt(
                n=1,
                started="2025-03-01T08:00:00Z",
                duration=12.0,
                backend="cross",
                log=key,
                status="failed",
                reason=LBER,
                matched_lines=(LBER, "error: command '/usr/bin/gcc' failed with exit code 1"),
            ),
        ),
    )
    store.update_record("python-ldap", "3.4.4", "3.11", lambda _: record)
    docs, config = site_project(tmp_path / "project")
    site = tmp_path / "site"
    build_site(
        store,
        docs_dir=docs,
        site_dir=site,
        config_file=config,
        options=SiteOptions(pip_index="http://127.0.0.1:9/simple/"),
        strict=True,
    )
    page = (site / "status" / "failures.html").read_text()
    assert "lber.h: No such file or directory" in page
    assert 'href="packages/python-ldap.html#v3-4-4-py3-11"' in page
    index = json.loads((site / "search" / "search_index.json").read_text())
    hits = [
        doc["location"]
        for doc in index["docs"]
        if doc["location"].startswith("status/failures.html#") and "lber.h" in doc["text"]
    ]
    # the build's own section (and the needs-a-hint list, which names its root cause)
    assert [h for h in hits if "python-ldap" in h] == [
        "status/failures.html#python-ldap-344-python-311"
    ]
    # the demo store's zlib failures are there too, each a section of its own
    zlib = [
        doc
        for doc in index["docs"]
        if doc["location"].startswith("status/failures.html#")
        and ZLIB_ERROR.split(": ", 1)[1] in doc["text"]
    ]
    assert len(zlib) >= 2
    assert "lber.h" not in " ".join(doc["text"] for doc in zlib)
    # nothing explained python-ldap's failure (no hint, no derived fix): it needs a hint
    needs = page.split('id="needs-a-hint"', 1)
    assert len(needs) == 2, "the failures page has no 'Needs a hint' section"
    assert "python-ldap" in needs[1].split("</table>", 1)[0]
