"""Migration scripts, one per schema version, applied in order and never edited once released."""
