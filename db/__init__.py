"""Database layer: SQLAlchemy models, engine, queries, migrations. The only place with SQL."""
