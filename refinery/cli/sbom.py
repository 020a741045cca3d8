"""``refinery sbom WHEEL`` and ``refinery attest WHEEL… --bundle FILE``: provenance.

``sbom`` prints the SBOMs a wheel carries in ``.dist-info/sboms/`` (PEP 770) as a table
per document (role, name, version, file or package URL), or ``--json``.

``attest`` (run by the publish workflow after ``actions/attest-build-provenance``) turns
the Sigstore bundle the action wrote into a PEP 740 provenance object, stores it beside
each wheel it names (the index then links it) and adds an ``attested`` event with the
attestation's URL to the wheel's build record (the status site links it).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from refinery.cli.app import Settings, _guard, main
from refinery.cli.render import make_console
from refinery.core.clock import now
from refinery.core.errors import InputError

if TYPE_CHECKING:
    from refinery.store import Store

SBOM_SCHEMA = 1


def sbom_tables(wheel: str, docs: dict[str, dict[str, Any]]) -> list[Table]:
    from refinery.builder.sbom import components_table

    tables = []
    for member, doc in docs.items():
        table = Table(title=f"{wheel}: {member} (CycloneDX {doc.get('specVersion', '?')})")
        for column in ("role", "name", "version", "file or package URL"):
            table.add_column(column)
        for row in components_table(doc):
            table.add_row(*row)
        tables.append(table)
    return tables


@main.command()
@click.argument("wheel", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the SBOMs as JSON.")
@click.pass_obj
@_guard
def sbom(settings: Settings, /, wheel: Path, as_json: bool) -> None:
    """Print the SBOMs WHEEL carries (.dist-info/sboms/, PEP 770)."""
    from refinery.builder.sbom import read_sboms

    try:
        docs = read_sboms(wheel)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read SBOMs: {exc}", path=str(wheel)) from None
    if as_json:
        doc = {"schema": SBOM_SCHEMA, "wheel": wheel.name, "sboms": docs}
        click.echo(json.dumps(doc, indent=1))
        return
    console = make_console()
    if not docs:
        console.print(f"{wheel.name} carries no SBOM")
        return
    for table in sbom_tables(wheel.name, docs):
        console.print(table)


def _publisher(repository: str, workflow: str, url: str) -> dict[str, Any]:
    publisher: dict[str, Any] = {"kind": "GitHub", "repository": repository, "workflow": workflow}
    if url:
        publisher["claims"] = {"attestation-url": url}
    return publisher


@main.command()
@click.argument("wheels", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="The Sigstore bundle (actions/attest-build-provenance: bundle-path).",
)
@click.option("--repository", envvar="GITHUB_REPOSITORY", default="", help="owner/name.")
@click.option("--workflow", envvar="GITHUB_WORKFLOW_REF", default="", help="The signing workflow.")
@click.option("--attestation-url", default="", help="Where GitHub shows the attestation.")
@click.pass_obj
@_guard
def attest(
    settings: Settings,
    /,
    wheels: tuple[Path, ...],
    bundle: Path,
    repository: str,
    workflow: str,
    attestation_url: str,
) -> None:
    """Store the Sigstore bundles of a file (JSON, or JSON Lines: one bundle a line) as
    PEP 740 provenance beside each of WHEELS that a bundle's statement names."""
    from refinery.store.provenance import attach, attestations_for, provenance_object

    store = settings.open_store()
    publisher = _publisher(repository, workflow, attestation_url)
    bundles = read_bundles(bundle)
    for wheel in wheels:
        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        found = attestations_for(bundles, sha256)
        if not found:
            raise InputError(
                f"no bundle names {wheel.name} (sha256 {sha256[:12]}…)", path=str(bundle)
            )
        key = attach(store, sha256, wheel.name, provenance_object(publisher, found))
        _record_event(store, sha256, wheel.name, attestation_url or key)
        click.echo(f"{wheel.name}: provenance at {key}")


def read_bundles(path: Path) -> list[dict[str, Any]]:
    """The bundles of ``path``: one JSON document, or JSON Lines."""
    text = path.read_text(encoding="utf-8")
    try:
        try:
            return [json.loads(text)]
        except ValueError:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise InputError(f"neither JSON nor JSON Lines: {exc}", path=str(path)) from None


def _record_event(store: Store, sha256: str, filename: str, where: str) -> None:
    """An ``attested`` event on the records naming this wheel."""
    from packaging.utils import parse_wheel_filename

    from refinery.core.models import BuildRecord

    def change(current: BuildRecord | None) -> BuildRecord:
        assert current is not None
        return current.with_event(now(), "attested", where)

    name = str(parse_wheel_filename(filename)[0])
    for rid in list(store.record_ids(name)):
        record = store.get_record(rid.name, rid.version, rid.python)
        if record is not None and record.wheel is not None and record.wheel.sha256 == sha256:
            store.update_record(rid.name, rid.version, rid.python, change)
