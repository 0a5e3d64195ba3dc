"""Alembic environment: the catalog opens its own connection and hands it over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from dicommedia.catalog.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
