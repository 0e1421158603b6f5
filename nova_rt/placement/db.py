"""Engine, sessions and schema migrations of the placement database.

SQLite (one machine, one or a few processes): WAL, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so that two writers queue on the
database lock instead of one failing late with "database is locked" after it
has read a snapshot that is no longer current.  PostgreSQL
(``postgresql+psycopg://``): READ COMMITTED, where the compare-and-swap
``UPDATE ... WHERE generation = :old`` of a second writer waits for the first
and then matches no row.

URLs carry passwords: nothing here puts one in a message.
"""

from __future__ import annotations

import contextlib
import os
import threading

import alembic.command
import alembic.config
import alembic.runtime.migration
import alembic.script
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from nova_rt import exception

_MIGRATIONS = os.path.join(os.path.dirname(__file__), 'migrations')
_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


#: libpq takes secrets in the query string too (``?password=``, and
#: ``sslpassword=`` for an encrypted client key).
_SECRET_QUERY_KEYS = ('password', 'sslpassword')


def safe_url(url: str) -> str:
    """The URL with its passwords masked, for messages and logs."""
    try:
        parsed = make_url(url)
        secrets = {key: '***' for key in _SECRET_QUERY_KEYS
                   if key in parsed.query}
        return parsed.update_query_dict(secrets).render_as_string(
            hide_password=True)
    except Exception:
        return '<unparsable database URL>'


def _sqlite_setup(engine: sa.Engine) -> None:
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute('PRAGMA busy_timeout=30000')
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(conn):
        conn.exec_driver_sql('BEGIN IMMEDIATE')


def create_engine(url: str) -> sa.Engine:
    """A new engine for ``url`` (``InvalidInput`` for a URL that cannot work)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise exception.InvalidInput(
            reason='[placement_database] connection is not a valid '
                   'SQLAlchemy URL') from None
    if parsed.get_backend_name() == 'sqlite':
        if parsed.database and parsed.database != ':memory:':
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)),
                        exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={'timeout': 30})
        _sqlite_setup(engine)
        with engine.connect() as conn:
            # WAL is a property of the file: set once, outside a transaction.
            conn.connection.dbapi_connection.execute('PRAGMA journal_mode=WAL')
        return engine
    if parsed.get_backend_name() == 'postgresql':
        # No pool_pre_ping: it is a round trip before every transaction (5-8%
        # of a report).  A connection the server dropped fails its first
        # statement instead; SQLAlchemy then empties the pool and the manager
        # retries the transaction once on a fresh connection.
        return sa.create_engine(parsed, pool_size=10, max_overflow=20)
    raise exception.InvalidInput(
        reason=f'unsupported database backend {parsed.get_backend_name()!r} '
               '(sqlite or postgresql+psycopg)')


_sqlite_locks: dict[int, threading.Lock] = {}


def transaction_guard(engine: sa.Engine):
    """What to hold around a transaction on ``engine``.

    SQLite: a process-wide lock, so that this process's threads queue on it
    and hand over at once; left to SQLite's busy handler they sleep in steps
    of up to 100 ms while waiting for the database lock, which cut the report
    rate in half (bench).  Other processes still queue on BEGIN IMMEDIATE.
    PostgreSQL: nothing, row locks do the work.
    """
    if engine.dialect.name != 'sqlite':
        return contextlib.nullcontext()
    with _engines_lock:
        return _sqlite_locks.setdefault(id(engine), threading.Lock())


def get_engine(url: str) -> sa.Engine:
    """The process-wide engine for ``url`` (one pool per process)."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_engine(url)
        return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def get_sessionmaker(url_or_engine) -> sessionmaker:
    engine = (url_or_engine if isinstance(url_or_engine, sa.Engine)
              else get_engine(url_or_engine))
    return sessionmaker(bind=engine, expire_on_commit=False)


def _alembic_config(connection) -> alembic.config.Config:
    config = alembic.config.Config()
    config.set_main_option('script_location', _MIGRATIONS)
    config.attributes['connection'] = connection
    return config


def sync(url: str) -> str:
    """Upgrade the schema at ``url`` to the newest migration; return it."""
    engine = get_engine(url)
    with engine.begin() as conn:
        alembic.command.upgrade(_alembic_config(conn), 'head')
    return head()


def head() -> str:
    script = alembic.script.ScriptDirectory(_MIGRATIONS)
    return script.get_current_head()


def current(url: str) -> str | None:
    """The schema revision of the database at ``url`` (None: empty)."""
    with get_engine(url).connect() as conn:
        ctx = alembic.runtime.migration.MigrationContext.configure(conn)
        return ctx.get_current_revision()


def is_at_head(url: str) -> bool:
    return current(url) == head()


def autovacuum_on(url: str) -> bool:
    """Whether the server vacuums on its own (SQLite: nothing to vacuum)."""
    engine = get_engine(url)
    if engine.dialect.name != 'postgresql':
        return True
    with engine.connect() as conn:
        return conn.execute(sa.text('SHOW autovacuum')).scalar() == 'on'
