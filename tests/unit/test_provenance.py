"""PEP 740 provenance, pure: a Sigstore bundle as ``actions/attest-build-provenance``
writes it (fake certificate and signature: nothing is verified here) becomes a PEP 740
provenance object beside the wheel; the index's JSON and HTML pages link it in the
shape PEP 740 gives; the status site shows the SBOM summary and the attestation link;
``refinery sbom`` prints a wheel's SBOM; ingested wheels keep their own SBOMs."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from click.testing import CliRunner
from fixtures.wheels import Project, make_wheel, write_wheel

from refinery.cli import main
from refinery.core.errors import InputError
from refinery.core.models import Attempt, BuildRecord, GraftedLib, NodeStatus, SbomSummary
from refinery.index import Index
from refinery.store import Store
from refinery.store.ingest import ingest
from refinery.store.provenance import (
    attach,
    attestation_from_bundle,
    get_provenance,
    provenance_object,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
ENV = {"REFINERY_STORE": None, "REFINERY_CACHE_DIR": None, "CI": None, "GITHUB_ACTIONS": None}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sigstore_bundle(*digests: str) -> dict[str, Any]:
    """The shape of a Sigstore bundle v0.3 with a DSSE envelope (SLSA provenance)."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"w{i}.whl", "digest": {"sha256": d}} for i, d in enumerate(digests)],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}, "runDetails": {}},
    }
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(b"DER certificate")},
            "tlogEntries": [{"logIndex": "1", "kindVersion": {"kind": "dsse", "version": "0.0.1"}}],
        },
        "dsseEnvelope": {
            "payload": b64(json.dumps(statement).encode()),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": b64(b"signature")}],
        },
    }


def pep740_shape(provenance: Any, sha256: str) -> None:
    """PEP 740's provenance object: version 1, bundles of a publisher (``kind``) and
    attestations (version 1, certificate + transparency entries, an envelope whose
    statement is an in-toto v1 Statement naming the file)."""
    assert provenance["version"] == 1
    assert isinstance(provenance["attestation_bundles"], list) and provenance["attestation_bundles"]
    for bundle in provenance["attestation_bundles"]:
        assert isinstance(bundle["publisher"]["kind"], str)
        assert bundle["attestations"]
        for att in bundle["attestations"]:
            assert att["version"] == 1
            material = att["verification_material"]
            assert base64.b64decode(material["certificate"]) and material["transparency_entries"]
            statement = json.loads(base64.b64decode(att["envelope"]["statement"]))
            assert base64.b64decode(att["envelope"]["signature"])
            assert statement["_type"] == STATEMENT_TYPE
            assert sha256 in {s["digest"]["sha256"] for s in statement["subject"]}


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str | None]] = {}
        self._attrs: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._attrs is not None and data.strip():
            self.found[data.strip()] = self._attrs
            self._attrs = None


def stored(store: Store, tmp: Path, version: str) -> tuple[Path, str]:
    filename, data, _ = make_wheel(Project("attested", version), "py3-none-any")
    path = tmp / filename
    path.write_bytes(data)
    ref = store.put_wheel(path)
    record = BuildRecord("attested", version, "3.11", NodeStatus.BUILT, wheel=ref)
    store.update_record("attested", version, "3.11", lambda _c: record)
    return path, ref.sha256


def test_the_index_serves_pep740_provenance(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    wheel, sha = stored(store, tmp_path, "1.0")
    _plain, _ = stored(store, tmp_path, "2.0")
    publisher = {"kind": "GitHub", "repository": "o/r", "workflow": "publish.yml"}
    attach(
        store,
        sha,
        wheel.name,
        provenance_object(publisher, [attestation_from_bundle(sigstore_bundle(sha))]),
    )

    out = tmp_path / "out"
    Index(store, out).build()
    page = out / "simple" / "attested"
    files = {f["filename"]: f for f in json.loads((page / "index.json").read_text())["files"]}
    url = files[wheel.name]["provenance"]
    assert isinstance(url, str) and "provenance" not in files[_plain.name]
    anchors = Anchors()
    anchors.feed((page / "index.html").read_text())
    assert anchors.found[wheel.name]["data-provenance"] == url
    assert "data-provenance" not in anchors.found[_plain.name]
    served = Path(urljoin(page.as_uri() + "/", url).removeprefix("file://"))
    pep740_shape(json.loads(served.read_text()), sha)
    pep740_shape(get_provenance(store, sha, wheel.name), sha)


def test_an_attestation_for_another_file_is_refused(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    wheel, sha = stored(store, tmp_path, "1.0")
    other = provenance_object(
        {"kind": "GitHub"}, [attestation_from_bundle(sigstore_bundle("00" * 32))]
    )
    with pytest.raises(InputError, match="does not name"):
        attach(store, sha, wheel.name, other)
    with pytest.raises(InputError, match="not a Sigstore bundle"):
        attestation_from_bundle({"verificationMaterial": {}})


def test_attest_command_stores_provenance_and_the_site_links_it(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store = Store.open(str(store_dir))
    wheel, sha = stored(store, tmp_path, "1.0")
    grafted = (
        GraftedLib("attested.libs/libz-0a1b2c3d.so.1", "libz.so.1", "zlib1g", "1:1.2.13", "deb"),
    )
    summary = SbomSummary("attested-1.0.dist-info/sboms/refinery.cdx.json", 6, grafted)

    def with_sbom(cur: BuildRecord | None) -> BuildRecord:
        assert cur is not None
        return cur.evolve(attempts=(Attempt(1, "t", status="built", sbom=summary),))

    store.update_record("attested", "1.0", "3.11", with_sbom)
    bundle = tmp_path / "bundle.jsonl"
    lines = [json.dumps(sigstore_bundle("00" * 32)), json.dumps(sigstore_bundle(sha))]
    bundle.write_text("\n".join(lines) + "\n")  # JSON Lines: the one naming the wheel counts
    url = "https://github.com/o/r/attestations/42"
    args = ["--store", str(store_dir), "attest", str(wheel), "--bundle", str(bundle)]
    result = CliRunner().invoke(
        main, [*args, "--attestation-url", url], env={**ENV, "GITHUB_REPOSITORY": "o/r"}
    )
    assert result.exit_code == 0, result.output
    provenance = get_provenance(store, sha, wheel.name)
    assert provenance is not None and len(provenance["attestation_bundles"][0]["attestations"]) == 1
    pep740_shape(provenance, sha)
    bundle.write_text(lines[0])
    refused = CliRunner().invoke(main, args, env=ENV)
    assert refused.exit_code != 0 and "no bundle names" in refused.output
    assert (
        provenance is not None
        and provenance["attestation_bundles"][0]["publisher"]["repository"] == "o/r"
    )
    record = store.get_record("attested", "1.0", "3.11")
    assert record is not None and record.events[-1].kind == "attested"

    from refinery.site import Generator, SiteOptions, load

    status = tmp_path / "status"
    Generator(
        store, status, SiteOptions(pip_index="http://i/simple/", hints_dir=tmp_path / "none")
    ).run(load(store))
    page = (status / "packages" / "attested.md").read_text()
    assert "<code>libz-0a1b2c3d.so.1</code> ← deb <code>zlib1g 1:1.2.13</code>" in page
    assert f'<strong>Attestation:</strong> <a href="{url}">' in page


def test_refinery_sbom_prints_a_table_and_json(tmp_path: Path) -> None:
    from refinery.builder.sbom.wheelfile import add_sbom

    wheel = write_wheel(tmp_path, "snap", "1.0", {"snap/__init__.py": b""})
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [
            {
                "type": "library",
                "bom-ref": "g",
                "name": "libsnappy1v5",
                "version": "1.1.9-3",
                "properties": [
                    {"name": "refinery:role", "value": "grafted-library"},
                    {"name": "refinery:file", "value": "snap.libs/libsnappy-0a1b2c3d.so.1"},
                ],
            }
        ],
    }
    add_sbom(wheel, "refinery.cdx.json", doc)
    table = CliRunner().invoke(main, ["sbom", str(wheel)], env=ENV)
    assert table.exit_code == 0, table.output
    assert re.search(r"grafted-library\s*│\s*libsnappy1v5\s*│\s*1\.1\.9-3", table.output), (
        table.output
    )
    as_json = CliRunner().invoke(main, ["sbom", str(wheel), "--json"], env=ENV)
    assert json.loads(as_json.output)["sboms"] == {
        "snap-1.0.dist-info/sboms/refinery.cdx.json": doc
    }
    bare = write_wheel(tmp_path / "bare", "bare", "1.0", {"bare/__init__.py": b""})
    assert "carries no SBOM" in CliRunner().invoke(main, ["sbom", str(bare)], env=ENV).output


def test_ingested_wheels_keep_their_own_sboms(tmp_path: Path) -> None:
    own = b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}'
    files = {"mine/__init__.py": b"", "mine-1.0.dist-info/sboms/vendor.cdx.json": own}
    wheel = write_wheel(tmp_path, "mine", "1.0", files)
    store = Store.open(str(tmp_path / "store"))
    (result,) = ingest(store, [wheel], twine=False)
    record = store.get_record("mine", "1.0", result.python)
    assert record is not None and record.source == "ingested"
    assert record.events[-1].message.endswith(
        "not built here; keeps its own SBOM sboms/vendor.cdx.json"
    )
    data = store.get_wheel(result.wheel)
    assert data is not None
    kept = tmp_path / "kept.whl"
    kept.write_bytes(data)
    with zipfile.ZipFile(kept) as zf:
        assert zf.read("mine-1.0.dist-info/sboms/vendor.cdx.json") == own
    assert hashlib.sha256(data).hexdigest() == result.wheel.sha256
