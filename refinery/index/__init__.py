"""The static pip index (PEP 503/691/658) rendered from the store."""
