"""Revisions of a node's database schema, oldest first (alembic loads them by path)."""
