"""Alembic migrations of the comms database; `comms.db.store.open_store()` runs them."""
