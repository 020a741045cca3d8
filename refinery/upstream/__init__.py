"""The upstream index: the simple-API client (PEP 691/503) and the sdist reader."""
