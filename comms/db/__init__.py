"""TODO db."""
