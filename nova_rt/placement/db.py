"""Engine, sessions and schema migrations of the placement database.

SQLite (one machine, one or a few processes): WAL, foreign keys on, and every
transaction opened with ``BEGIN IMMEDIATE`` so that two writers queue on the
database lock instead of one failing late with "database is locked" after it
has read a snapshot that is no longer current.  PostgreSQL
(``postgresql+psycopg://``): READ COMMITTED, where the compare-and-swap
``UPDATE ... WHERE generation = :old`` of a second writer waits for the first
and then matches no row.  MySQL/MariaDB (``mysql+pymysql://``): READ
COMMITTED too (not InnoDB's REPEATABLE READ), so that every statement reads
what is committed, as on PostgreSQL, and writers that create rows on
different hosts take no gap locks on each other.

The server databases' engines come from oslo.db (``engines.create_engine``:
pool sizing, connection recycling, the MySQL SQL mode, and its exception
filters, which name a deadlock ``DBDeadlock`` and a lost server
``DBConnectionError`` whatever the driver).  Not its ``enginefacade``: the
operations run on SQLAlchemy Core connections from one process-wide engine
per URL, and the facade's per-transaction context (and its one global
configuration per process) adds work to every report for nothing the
manager's own transaction does not already do.

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
from oslo_db import exception as db_exc
from pymysql import err as pymysql_err
from oslo_db.sqlalchemy import engines as db_engines
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
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
        # Not for reads in autocommit mode (the reports' no-write checks):
        # each of their statements is a transaction of its own.
        if conn.get_execution_options().get('isolation_level') != 'AUTOCOMMIT':
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
    driver = _DRIVERS.get(parsed.get_backend_name())
    if driver is not None:
        if parsed.get_driver_name() != driver:
            # SQLAlchemy's default drivers (psycopg2, mysqlclient) are not
            # installed with nova_rt.
            raise exception.InvalidInput(
                reason=f'database driver {parsed.get_driver_name()!r} is not '
                       f'installed: use {parsed.get_backend_name()}+{driver}://')
        return _server_engine(parsed)
    raise exception.InvalidInput(
        reason=f'unsupported database backend {parsed.get_backend_name()!r} '
               '(sqlite, postgresql+psycopg or mysql+pymysql)')


#: The driver each server database is reached with (requirements.txt).
_DRIVERS = {'postgresql': 'psycopg', 'mysql': 'pymysql'}


def _server_engine(url) -> sa.Engine:
    mysql = url.get_backend_name() == 'mysql'
    if mysql and 'charset' not in url.query:
        # oslo.db's default is utf8 (three bytes): names are Unicode.
        url = url.update_query_dict({'charset': 'utf8mb4'})
    engine = db_engines.create_engine(
        url, max_pool_size=10, max_overflow=20, connection_recycle_time=3600,
        mysql_sql_mode='TRADITIONAL' if mysql else None,
        # Connecting is the caller's business (start-up waits and says
        # so), not a silent 10 x 10 s loop inside the engine.
        max_retries=0, thread_checkin=False)
    # No pre-ping, which oslo.db turns on: it is a round trip before every
    # transaction (5-8% of a report on PostgreSQL).  A connection the server
    # dropped fails its first statement instead; SQLAlchemy then empties the
    # pool and the manager retries the transaction on a fresh connection.
    # (connection_recycle_time above stays well inside MySQL's wait_timeout.)
    engine.pool._pre_ping = False
    if mysql:
        @event.listens_for(engine, 'connect')
        def _read_committed(dbapi_conn, _record):
            with dbapi_conn.cursor() as cursor:
                cursor.execute('SET SESSION TRANSACTION ISOLATION LEVEL '
                               'READ COMMITTED')
        _rollback_on_return_only_if_open(engine)
    return engine


def _rollback_on_return_only_if_open(engine: sa.Engine) -> None:
    """MySQL: no ROLLBACK when a committed connection goes back to the pool.

    SQLAlchemy rolls back every connection returned after a commit, to be
    sure; psycopg skips that when no transaction is open, PyMySQL sends it
    to the server: one round trip in six of a resync report (counted on
    PyMySQL's connection).  Here a connection is rolled back on return
    unless the last thing its transaction did was COMMIT or ROLLBACK (the
    events fire before they are sent; an error then leaves no transaction
    open on MySQL, or invalidates the connection), and the server's status
    does not say a transaction is open.
    """
    from pymysql.constants import SERVER_STATUS
    from sqlalchemy.pool import base as pool_base
    engine.pool._reset_on_return = pool_base.reset_none

    # Cleared at every checkout too: a raw connection (no Connection, no
    # events) is always rolled back.
    @event.listens_for(engine.pool, 'checkout')
    def _checked_out(_dbapi_conn, record, _proxy):
        record.info['nova_rt_ended'] = False

    def _mark(conn, ended: bool) -> None:
        # (An invalidated connection is gone: ``conn.connection`` would
        # try to reconnect inside a transaction still to be rolled back.)
        if not conn.invalidated:
            conn.connection.info['nova_rt_ended'] = ended

    event.listen(engine, 'begin', lambda conn: _mark(conn, False))
    event.listen(engine, 'commit', lambda conn: _mark(conn, True))
    event.listen(engine, 'rollback', lambda conn: _mark(conn, True))

    @event.listens_for(engine.pool, 'reset')
    def _reset(dbapi_conn, record, state):
        if state.terminate_only:
            return                       # about to be closed anyway
        if (record is not None and record.info.get('nova_rt_ended')
                and not dbapi_conn.server_status
                & SERVER_STATUS.SERVER_STATUS_IN_TRANS):
            return
        dbapi_conn.rollback()


def is_duplicate(error: BaseException) -> bool:
    """Two writers created the same row at once (a unique key)."""
    return isinstance(error, (sa_exc.IntegrityError, db_exc.DBDuplicateEntry,
                              db_exc.DBReferenceError))


# PostgreSQL deadlock_detected and serialization_failure, as raised by
# statements run on psycopg itself (common.Direct), which oslo.db's filters
# never see.
_RETRY_SQLSTATES = {'40P01', '40001'}
# MySQL's deadlock and lock wait timeout, both DBDeadlock to oslo.db's
# filters, by error code: PyMySQL gives the second only SQLSTATE HY000.
_RETRY_MYSQL_CODES = {1213, 1205}


def is_retryable(error: BaseException) -> bool:
    """Whether the transaction lost a race or its connection, was rolled
    back, and may simply be run again."""
    if isinstance(error, (db_exc.DBDeadlock, db_exc.DBConnectionError,
                          db_exc.DBConsistencyError)):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    # A dropped connection (server restarted, idle connection cut) failed
    # before or during the transaction: it was rolled back, or if the commit
    # itself got through, the repeated write meets its own generation bump
    # and is refused as a conflict rather than applied twice.
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, 'sqlstate', None)
    return (sqlstate in _RETRY_SQLSTATES
            or (isinstance(error.orig, pymysql_err.MySQLError)
                and error.orig.args[:1] and error.orig.args[0]
                in _RETRY_MYSQL_CODES)
            or 'database is locked' in str(error.orig))


def is_database_error(error: BaseException) -> bool:
    """A failure of the database itself (or of reaching it), in whichever
    family the engine raised it."""
    return isinstance(error, (sa_exc.DBAPIError, db_exc.DBError))


def describe(error: BaseException) -> str:
    """The driver's first line: psycopg's and PyMySQL's never hold the
    password, where SQLAlchemy's message adds the statement."""
    inner = getattr(error, 'inner_exception', None) or error
    reason = str(getattr(inner, 'orig', None) or inner).strip().splitlines()
    return reason[0] if reason else type(inner).__name__


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
    sqlite = engine.dialect.name == 'sqlite'
    with engine.connect() as conn:
        if sqlite:
            # Alembic's batch mode alters a column by re-creating the table
            # (migration 0005); dropping the old one while others refer to
            # it fails with foreign keys on.  Off for this connection only,
            # outside the transaction (SQLite ignores it inside), and
            # checked before commit.
            conn.connection.dbapi_connection.execute(
                'PRAGMA foreign_keys=OFF')
        try:
            with conn.begin():
                alembic.command.upgrade(_alembic_config(conn), 'head')
                if sqlite and conn.exec_driver_sql(
                        'PRAGMA foreign_key_check').first() is not None:
                    raise exception.InvalidInput(
                        reason='the migrated SQLite database breaks a '
                               'foreign key; nothing was changed')
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute(
                    'PRAGMA foreign_keys=ON')
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
