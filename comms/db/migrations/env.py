"""Alembic environment: runs on the connection `comms.db.store.open_store()` hands over."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from comms.db.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic -x ...` from a shell: open the URL in sqlalchemy.url ourselves.
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
