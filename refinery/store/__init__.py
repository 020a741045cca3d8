"""The store: one protocol over a local folder or S3, its key layout, summaries, publish
and ingest. Only this package knows key names: every other stage asks :class:`Store`.

Modules: :mod:`.blobs` (the backend protocol, a folder), :mod:`.s3` (S3), :mod:`.layout`
(the keys), :mod:`.ledger` (:class:`Store`: immutability, compare-and-swap, queries),
:mod:`.summary` (per-project summaries), :mod:`.files` (digests, wheel metadata),
:mod:`.publish` and :mod:`.ingest`.
"""

from refinery.store.blobs import DEFAULT_STORE, BlobStore, LocalBlobStore, open_blobs
from refinery.store.files import sha256_bytes, sha256_file, wheel_metadata
from refinery.store.layout import RecordId, log_key, wheel_key
from refinery.store.ledger import Store, StoreLookup
from refinery.store.s3 import S3BlobStore, S3Options
from refinery.store.summary import ProjectSummary, SummaryEntry, usable_record

__all__ = [
    "DEFAULT_STORE",
    "BlobStore",
    "LocalBlobStore",
    "ProjectSummary",
    "RecordId",
    "S3BlobStore",
    "S3Options",
    "Store",
    "StoreLookup",
    "SummaryEntry",
    "log_key",
    "open_blobs",
    "sha256_bytes",
    "sha256_file",
    "usable_record",
    "wheel_key",
    "wheel_metadata",
]
