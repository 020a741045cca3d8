"""The store: one protocol over a local folder or S3, its key layout, summaries, publish
and ingest. Only this package knows key names."""
