"""Alembic environment and versions of the catalog schema (applied by ``registry.catalog.db`` on open)."""
