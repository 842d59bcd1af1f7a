"""Alembic environment: runs on a connection handed in by registry.catalog.db, or on the database named by
``alembic -x db_url=URL`` (else ``sqlalchemy.url`` of alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from registry.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    x_args = context.get_x_argument(as_dictionary=True)
    url = x_args.get("db_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit(
            "no catalog database: pass `alembic -x db_url=URL` (or sqlalchemy.url in alembic.ini)"
        )
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
