"""TODO content."""
