"""PEP 740 provenance beside a stored wheel: the attestation a CI job made for it.

GitHub's ``actions/attest-build-provenance`` signs an in-toto statement (SLSA build
provenance) naming the wheels' sha256 with Sigstore and returns a Sigstore bundle.
:func:`attestation_from_bundle` turns such a bundle into a PEP 740 attestation object
(the same mapping ``pypi-attestations`` makes: certificate and transparency entries as
verification material, the DSSE payload and signature as the envelope);
:func:`provenance_object` wraps attestations with their publisher into the provenance
object the index serves at ``wheels/<sha256>/<file>.provenance``.

Nothing here verifies a signature: verifying needs Sigstore's trust root (a client such
as ``pypi-attestations verify`` or ``gh attestation verify`` does it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from refinery.core.errors import InputError
from refinery.store import layout
from refinery.store.ledger import Store

PROVENANCE_VERSION = 1


def statement_digests(statement: bytes) -> set[str]:
    """The sha256 digests an in-toto statement's subjects name."""
    doc = json.loads(statement)
    return {s.get("digest", {}).get("sha256", "") for s in doc.get("subject", ())} - {""}


def attestation_from_bundle(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """A Sigstore bundle (v0.1 to v0.3 JSON) as a PEP 740 attestation object."""
    try:
        material = bundle["verificationMaterial"]
        if "certificate" in material:
            certificate = material["certificate"]["rawBytes"]
        else:
            certificate = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        envelope = bundle["dsseEnvelope"]
        statement, signature = envelope["payload"], envelope["signatures"][0]["sig"]
        entries = list(material["tlogEntries"])
    except (KeyError, IndexError, TypeError) as exc:
        raise InputError(f"not a Sigstore bundle with a DSSE envelope: missing {exc}") from None
    return {
        "version": 1,
        "verification_material": {"certificate": certificate, "transparency_entries": entries},
        "envelope": {"statement": statement, "signature": signature},
    }


def attestations_for(bundles: Sequence[Mapping[str, Any]], sha256: str) -> list[dict[str, Any]]:
    """The PEP 740 attestations of those ``bundles`` whose statement names ``sha256``."""
    out = []
    for bundle in bundles:
        attestation = attestation_from_bundle(bundle)
        statement = base64.b64decode(attestation["envelope"]["statement"])
        if sha256 in statement_digests(statement):
            out.append(attestation)
    return out


def provenance_object(
    publisher: Mapping[str, Any], attestations: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """PEP 740's provenance object: one bundle of ``attestations`` by ``publisher``."""
    return {
        "version": PROVENANCE_VERSION,
        "attestation_bundles": [{"publisher": dict(publisher), "attestations": list(attestations)}],
    }


def attach(store: Store, sha256: str, filename: str, provenance: Mapping[str, Any]) -> str:
    """Store ``provenance`` beside the wheel ``sha256``/``filename`` (each attestation's
    statement must name that sha256); its key."""
    for bundle in provenance.get("attestation_bundles", ()):
        for att in bundle.get("attestations", ()):
            statement = base64.b64decode(att["envelope"]["statement"])
            if sha256 not in statement_digests(statement):
                raise InputError(
                    f"the attestation does not name {filename} (sha256 {sha256[:12]}…)"
                )
    if not store.blobs.exists(layout.wheel_key(sha256, filename)):
        raise InputError(f"{filename} (sha256 {sha256[:12]}…) is not in the store")
    key = layout.provenance_key(sha256, filename)
    store.blobs.put(key, json.dumps(provenance, indent=1).encode())
    return key


def has_provenance(store: Store, sha256: str, filename: str) -> bool:
    return store.blobs.exists(layout.provenance_key(sha256, filename))


def get_provenance(store: Store, sha256: str, filename: str) -> dict[str, Any] | None:
    got = store.blobs.get(layout.provenance_key(sha256, filename))
    return json.loads(got[0]) if got is not None else None
