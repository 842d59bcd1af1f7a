"""Alembic environment and versions of the catalog schema (applied by ``registry.catalog.db`` on open)."""

# The newest revision under versions/; tests/registry/test_migrations.py checks it against Alembic's head.
HEAD_REVISION = "0003"
