"""Alembic migrations of the comms database; `comms.db.subscribers.open_store()` runs them."""
