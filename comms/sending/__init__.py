"""TODO sending."""
