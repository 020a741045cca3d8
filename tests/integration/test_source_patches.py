"""A hint's patches on a real sdist tree with GNU patch: applied in order, all or
nothing per patch, and the catalog's cryptography patch on the real 43.0.3 sdist."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest

from refinery.builder.artifacts import apply_patches, unpack_sdist
from refinery.builder.errors import SdistError
from refinery.core.models import SourcePatch
from refinery.hints import load_catalog

HINTS = Path(__file__).resolve().parents[2] / "hints"

GOOD = """\
--- a/pkg/a.txt
+++ b/pkg/a.txt
@@ -1,2 +1,2 @@
 one
-two
+TWO
"""

# its first file applies, its second does not: neither may change
HALF = GOOD.replace("+TWO", "+zwei") + (
    "--- a/pkg/b.txt\n+++ b/pkg/b.txt\n@@ -1 +1 @@\n-not what b says\n+x\n"
)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "demo-1.0"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.txt").write_text("one\ntwo\n")
    (root / "pkg" / "b.txt").write_text("bee\n")
    return root


def test_patches_apply_in_order_and_say_so(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    second = GOOD.replace("-two\n+TWO", "-TWO\n+three")
    lines = apply_patches(root, [SourcePatch("a.patch", GOOD), SourcePatch("b.patch", second)])
    assert (root / "pkg" / "a.txt").read_text() == "one\nthree\n"
    sha = hashlib.sha256(GOOD.encode()).hexdigest()[:12]
    assert lines[0] == f"a.patch (sha256 {sha}): 1 files patched"
    assert not list(root.rglob("*.orig")) and not list(root.rglob("*.rej"))


def test_a_patch_that_does_not_apply_changes_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    with pytest.raises(SdistError, match=r"patch half\.patch \(sha256 \w+\) does not apply: "):
        apply_patches(root, [SourcePatch("half.patch", HALF)])
    assert (root / "pkg" / "a.txt").read_text() == "one\ntwo\n"
    assert (root / "pkg" / "b.txt").read_text() == "bee\n"


@pytest.mark.network
def test_the_cryptography_patch_applies_to_the_real_43_sdist(tmp_path: Path) -> None:
    url = (
        "https://files.pythonhosted.org/packages/0d/05/07b55d1fa21ac18c3a8c79f764e2514e6f6a9698"
        "f1be44994f5adf0d29db/cryptography-43.0.3.tar.gz"
    )
    sdist = tmp_path / "cryptography-43.0.3.tar.gz"
    with urllib.request.urlopen(url, timeout=120) as response:
        sdist.write_bytes(response.read())
    project = unpack_sdist(sdist, tmp_path / "src")
    hint = load_catalog(HINTS).get("cryptography-43-asn1")
    assert hint is not None
    (line,) = apply_patches(project, hint.fix.patches)
    assert line.endswith(": 10 files patched")
    manifest = (project / "src/rust/cryptography-x509/Cargo.toml").read_text()
    assert 'asn1 = { version = "0.20.0"' in manifest
    common = (project / "src/rust/cryptography-x509/src/common.rs").read_text()
    assert "X509GeneralizedTime" in common
