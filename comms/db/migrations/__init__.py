"""Alembic migrations of the comms database; `store.open_store()` runs them to head."""
