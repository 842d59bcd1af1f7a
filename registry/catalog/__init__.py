"""The SQL catalog: SQLAlchemy 2.0 models (``models``) and the database facade (``db.Catalog``)."""
