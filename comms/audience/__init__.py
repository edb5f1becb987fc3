"""TODO audience."""
