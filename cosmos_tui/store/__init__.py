"""SQLite persistence: typed tables, Alembic migrations and async repositories."""
