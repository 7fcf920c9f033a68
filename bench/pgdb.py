"""The benchmarks' own PostgreSQL database: made afresh for each run, never the test suite's.

The URL is a SQLAlchemy one (``postgresql+asyncpg://user@host:port/name``), as the product's
``--db`` takes; raw asyncpg connections use the same URL without the driver name.
"""

import asyncpg
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
PROTECTED = frozenset({"test", "postgres", "template0", "template1"})


def database_name(url: str) -> str:
    """The database a URL names."""
    return make_url(url).database or ""


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """The URL as asyncpg takes it (no driver name), optionally naming another database."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def check_name(url: str) -> str:
    """The database's name, if a benchmark may drop and remake it: it must start with "bench"
    (the test suite's database ``test`` and the server's own are never touched)."""
    name = database_name(url)
    if name in PROTECTED or not name.startswith("bench"):
        raise SystemExit(f"--pg must name a database whose name starts with 'bench' (got {name!r})")
    return name


async def recreate(url: str) -> None:
    """Drop the benchmark database if it exists (closing its sessions) and create it empty."""
    name = check_name(url)
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def exists(url: str) -> bool:
    """Whether the benchmark database exists."""
    name = check_name(url)
    conn = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def server_version(url: str) -> str:
    """PostgreSQL's version string, short (e.g. "15.20")."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()
