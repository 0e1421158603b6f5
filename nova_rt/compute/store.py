"""The compute daemon's local store: SQLite in WAL mode.

Every change the tracker makes for one RPC call is written in a transaction
that has committed (``synchronous = FULL``: fsynced) before the caller hears
yes, so a crash (even SIGKILL, or a power loss) at any moment loses no
acknowledged claim and leaves no half-applied one.  The schema is versioned
with ``PRAGMA user_version`` and upgraded in order at open time.

Group commit (issue 19): changes of calls that arrive while a commit is on
its way to disk are written together, in one transaction with one fsync
(``Changes.merged``; the queue and who commits are ``groupcommit``, the
order in memory and the undoing of a failed group the tracker's).  A lone
call commits at once, as before; there is no timer and no writer thread.
A group is all or nothing, as one call's change always was: when its
commit fails, every call in it (and every one queued behind it) hears the
error and the tracker's memory goes back to what this file holds.
Measured with ``bench/bench_rpc.py --sections concurrency`` (2 cores):
``doc/source/operations.rst``, "The state database".

A store that cannot be used stops the daemon at start with one line naming
the file and the fix (``nova_rt.exception.LocalStoreError``), never a
driver traceback: not a database, a failed integrity check, a schema newer
than this code.  A write that fails (a full disk, a read-only file system)
is the contract's ``ComputeResourcesUnavailable`` and changes nothing: the
transaction is rolled back and the caller may retry.

The file stays as small as what it holds: ended records are deleted
(``Changes.delete_migration``, ``prune_ended_migrations``), freed pages go
back to the file system (``auto_vacuum = INCREMENTAL`` and ``compact()``),
and the WAL is truncated after a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import urllib.parse
from typing import Optional

from nova_rt import exception
from nova_rt.compute import ledger

LOG = logging.getLogger(__name__)

_INITIAL_SCHEMA = """
    CREATE TABLE instances (
        uuid TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    CREATE TABLE migrations (
        uuid TEXT PRIMARY KEY,
        instance_uuid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ended_at REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX migrations_instance ON migrations (instance_uuid);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
"""

#: ``PRAGMA auto_vacuum`` value of INCREMENTAL.
_INCREMENTAL = 2


def _incremental_vacuum_on(db: sqlite3.Connection) -> None:
    """Version 2, outside any transaction: freed pages can be given back.

    A store made before version 2 has auto_vacuum off, which only a VACUUM
    can change: done once here (a few ms for a store of a few MB).  A new
    store has it on already (set before its tables were created).
    """
    if db.execute('PRAGMA auto_vacuum').fetchone()[0] != _INCREMENTAL:
        db.execute(f'PRAGMA auto_vacuum={_INCREMENTAL}')
        db.execute('VACUUM')


#: Schema migrations, applied in order; index + 1 is the version they reach.
#: A string runs in the transaction that sets the version; a (callable,
#: string) pair runs the callable first, outside it (VACUUM cannot run in a
#: transaction), and must be safe to run again after a crash.
MIGRATIONS = (
    _INITIAL_SCHEMA,
    (_incremental_vacuum_on,
     # Pruning looks ended migrations up by age.
     'CREATE INDEX IF NOT EXISTS migrations_ended ON migrations (ended_at) '
     'WHERE ended_at IS NOT NULL'),
)
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = frozenset(('instances', 'migrations', 'meta'))

#: Ended migrations kept at most by ``prune_ended_migrations`` unless told
#: otherwise (newest kept): the ledger's bound, so that the store and the
#: tracker's memory remember the same ones.
KEEP_ENDED_MIGRATIONS = ledger.ENDED_MAX

#: What to tell the operator for a store that cannot be read.
RECOVER_HINT = ('restore it from a backup (remove the -wal and -shm files '
                'beside it first), or rebuild it from placement and libvirt '
                'with "nova-rt-manage --config-file <the daemon\'s '
                'configuration> store recover", which keeps this file aside')


class StoreError(exception.LocalStoreError):
    """The store cannot be opened or is newer than this code."""


class Changes:
    """What one tracker operation writes; applied in one transaction."""

    def __init__(self):
        self.instances = {}     # uuid -> InstanceRecord, or None (delete)
        self.migrations = {}    # uuid -> MigrationRecord, or None (delete)
        self.meta = {}          # key -> JSON-able value

    def put_instance(self, record) -> None:
        self.instances[record.uuid] = record

    def delete_instance(self, uuid: str) -> None:
        self.instances[uuid] = None

    def put_migration(self, record) -> None:
        self.migrations[record.uuid] = record

    def delete_migration(self, uuid: str) -> None:
        """Forget a migration (one that ended and need not be remembered)."""
        self.migrations[uuid] = None

    def set_meta(self, key: str, value) -> None:
        self.meta[key] = value

    def __bool__(self):
        return bool(self.instances or self.migrations or self.meta)

    @classmethod
    def merged(cls, changes: list) -> 'Changes':
        """What writing ``changes`` one after the other leaves: each row
        takes its last value (a record is always put or dropped whole)."""
        merged = cls()
        for each in changes:
            merged.instances.update(each.instances)
            merged.migrations.update(each.migrations)
            merged.meta.update(each.meta)
        return merged


def _write_hint(error: sqlite3.Error, directory: str) -> str:
    """What the operator can do about a failed open or write."""
    where = f'{directory} ([DEFAULT] state_path)'
    text = str(error).lower()
    if 'full' in text:
        return f'free space on the file system of {where}'
    if 'readonly' in text or 'read-only' in text:
        return f'make {where} writable by the service user'
    if 'locked' in text:
        return ('stop the other process that holds it (a second '
                'nova-rt-compute, or nova-rt-manage store recover)')
    return f'check the disk and the permissions of {where}'


class ClaimStore:
    """SQLite file under ``state_path``; safe to share between threads.

    ``existed`` and ``size_at_open`` say what was there before this object
    opened (and created) the file, so that a start-up check can tell a new
    store from a lost one.
    """

    def __init__(self, path: str, synchronous: str = 'FULL'):
        # FULL: a commit is on disk before the caller is told yes, even across
        # a power loss; NORMAL would survive only a process crash.
        if synchronous not in ('FULL', 'NORMAL'):
            raise StoreError(path=path,
                             reason=f'unknown synchronous mode {synchronous!r}')
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path))
        in_memory = path == ':memory:'
        self.existed = not in_memory and os.path.exists(path)
        self.size_at_open = os.path.getsize(path) if self.existed else 0
        if not in_memory:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        # The state holds tenants' claims: readable by the service user only.
        old_umask = os.umask(0o077)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False,
                                       isolation_level=None)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        finally:
            os.umask(old_umask)
        try:
            self._db.execute('PRAGMA journal_mode=WAL')
            self._db.execute(f'PRAGMA synchronous={synchronous}')
            # No journal_size_limit: it truncates the WAL each time it
            # restarts, which doubled the cost of every claim's commit
            # (0.32 -> 0.62 ms on this machine); compact() truncates it
            # once in a while instead.
            self._check_integrity()
            self._upgrade()
            self._check_tables()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._unusable(exc) from None
            raise

    # ------------------------------------------------------------ opening

    def _unusable(self, error: sqlite3.Error) -> exception.LocalStoreError:
        """The operator's message for a store that cannot be opened."""
        text = str(error)
        if isinstance(error, sqlite3.OperationalError):
            # The file may be fine; where it lives or who holds it is not.
            return StoreError(path=self.path, reason=(
                f'cannot be opened ({text}); '
                f'{_write_hint(error, self.directory)}, then start again'))
        return exception.LocalStoreCorrupt(path=self.path, reason=(
            f'is damaged ({text}); nova-rt-compute will not run on claims it '
            f'cannot read: {RECOVER_HINT}'))

    def _check_integrity(self) -> None:
        rows = self._db.execute('PRAGMA integrity_check(5)').fetchall()
        problems = [row[0] for row in rows if row[0] != 'ok']
        if problems:
            raise exception.LocalStoreCorrupt(path=self.path, reason=(
                f'fails its integrity check ({"; ".join(problems)[:300]}); '
                f'nova-rt-compute will not run on claims it cannot trust: '
                f'{RECOVER_HINT}'))

    def _check_tables(self) -> None:
        names = {row[0] for row in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        missing = _TABLES - names
        if missing:
            raise exception.LocalStoreCorrupt(path=self.path, reason=(
                f'claims schema version {SCHEMA_VERSION} but has no table '
                f'{", ".join(sorted(missing))}: {RECOVER_HINT}'))

    def _upgrade(self) -> None:
        with self._lock:
            version = self._db.execute('PRAGMA user_version').fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(path=self.path, reason=(
                    f'has schema version {version}, newer than this nova_rt '
                    f'({SCHEMA_VERSION}): it was written by a newer release. '
                    f'Run that release again, or restore a copy this release '
                    f'wrote; a store is never downgraded'))
            if version == 0:
                # Only before the first table is created does this take
                # effect without a VACUUM.
                self._db.execute(f'PRAGMA auto_vacuum={_INCREMENTAL}')
            for index in range(version, SCHEMA_VERSION):
                step = MIGRATIONS[index]
                if not isinstance(step, str):
                    prepare, step = step
                    prepare(self._db)
                with self._transaction():
                    for statement in step.split(';'):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f'PRAGMA user_version={index + 1}')

    # ------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction; rolled back whole on any error."""
        self._db.execute('BEGIN IMMEDIATE')
        try:
            yield
            self._db.execute('COMMIT')
        except BaseException:
            # SQLite may already have rolled back by itself (a full disk,
            # an I/O error), and then a ROLLBACK would be an error of its own.
            if self._db.in_transaction:
                try:
                    self._db.execute('ROLLBACK')
                except sqlite3.Error:
                    LOG.debug('rollback of %s failed', self.path, exc_info=True)
            raise

    @contextlib.contextmanager
    def _writing(self):
        """Lock + transaction; a failed write is the contract's named error."""
        try:
            with self._lock, self._transaction():
                yield
        except sqlite3.Error as exc:
            if isinstance(exc, (sqlite3.ProgrammingError,
                                sqlite3.IntegrityError)):
                raise       # a bug here, not a disk: keep its traceback
            LOG.error('Local state store %s could not be written, nothing '
                      'changed: %s', self.path, exc)
            raise exception.ComputeResourcesUnavailable(reason=(
                f'the local state store {self.path} could not be written '
                f'({exc}), so nothing was changed; '
                f'{_write_hint(exc, self.directory)}, then retry')) from None

    def apply(self, changes: Changes) -> None:
        """Write ``changes`` atomically; raises and writes nothing on error.

        ``ComputeResourcesUnavailable`` when the file cannot be written.
        """
        if not changes:
            return
        inst_rows = [(uuid, None if rec is None else json.dumps(rec.to_dict()))
                     for uuid, rec in changes.instances.items()]
        mig_rows, mig_deleted = [], []
        for uuid, rec in changes.migrations.items():
            if rec is None:
                mig_deleted.append((uuid,))
            else:
                mig_rows.append((uuid, rec.migration.instance_uuid, rec.seq,
                                 rec.ended_at, json.dumps(rec.to_dict())))
        with self._writing():
            for uuid, data in inst_rows:
                if data is None:
                    self._db.execute('DELETE FROM instances WHERE uuid=?',
                                     (uuid,))
                else:
                    self._db.execute(
                        'INSERT OR REPLACE INTO instances (uuid, data) '
                        'VALUES (?, ?)', (uuid, data))
            self._db.executemany('DELETE FROM migrations WHERE uuid=?',
                                 mig_deleted)
            self._db.executemany(
                'INSERT OR REPLACE INTO migrations (uuid, instance_uuid, seq, '
                'ended_at, data) VALUES (?, ?, ?, ?, ?)', mig_rows)
            for key, value in changes.meta.items():
                self._db.execute(
                    'INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)',
                    (key, json.dumps(value)))

    # ------------------------------------------------------------ reading

    def load(self) -> tuple:
        """(instance dicts, migration dicts) as stored."""
        with self._lock:
            instances = self._rows('instances', 'SELECT uuid, data FROM instances')
            migrations = self._rows('migrations', 'SELECT uuid, data FROM '
                                    'migrations ORDER BY seq')
        return instances, migrations

    def _rows(self, table: str, query: str) -> list:
        rows = []
        for uuid, data in self._db.execute(query):
            try:
                rows.append(json.loads(data))
            except ValueError:
                raise exception.LocalStoreCorrupt(path=self.path, reason=(
                    f'the {table} row {uuid} is not JSON: {RECOVER_HINT}'
                )) from None
        return rows

    def get_meta(self, key: str, default=None):
        with self._lock:
            row = self._db.execute('SELECT value FROM meta WHERE key=?',
                                   (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value) -> None:
        changes = Changes()
        changes.set_meta(key, value)
        self.apply(changes)

    # ------------------------------------------------------------ keeping it small

    def prune_ended_migrations(self, before: float,
                               keep: Optional[int] = KEEP_ENDED_MIGRATIONS) -> list:
        """Forget migrations that ended before ``before`` (a time.time()),
        and all but the ``keep`` newest ended ones (None: no count bound).

        Returns the uuids forgotten, so that the caller forgets the same ones.
        """
        bound = -1 if keep is None else max(0, int(keep))
        with self._writing():
            rows = self._db.execute(
                'DELETE FROM migrations WHERE ended_at IS NOT NULL AND '
                '(ended_at < ? OR (? >= 0 AND uuid IN ('
                '  SELECT uuid FROM migrations WHERE ended_at IS NOT NULL '
                '  ORDER BY ended_at DESC, seq DESC LIMIT -1 OFFSET ?))) '
                'RETURNING uuid', (before, bound, max(bound, 0))).fetchall()
        return [row[0] for row in rows]

    def compact(self, max_pages: int = 0) -> Optional[dict]:
        """Give freed pages back to the file system and truncate the WAL.

        For the periodic audit, outside the tracker's lock (this one takes
        the store's own lock for a few ms).  ``max_pages`` bounds one call
        (0: every free page).  Housekeeping only: a failure is logged and
        None returned; durability is not touched (the checkpoint copies
        committed pages only).
        """
        try:
            with self._lock:
                before = self._sizes()
                free = self._db.execute('PRAGMA freelist_count').fetchone()[0]
                if free:
                    # Each step of this pragma frees one page, and execute()
                    # steps once: executescript() runs it to the end.
                    self._db.executescript(
                        f'PRAGMA incremental_vacuum({int(max_pages)});')
                self._db.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
                after = self._sizes()
        except sqlite3.Error as exc:
            LOG.warning('Local state store %s not compacted: %s', self.path, exc)
            return None
        return {'freed_pages': free, 'bytes_before': before,
                'bytes_after': after}

    def _sizes(self) -> int:
        """Bytes of the database and its WAL on disk."""
        total = 0
        for name in (self.path, self.path + '-wal'):
            try:
                total += os.path.getsize(name)
            except OSError:
                pass
        return total

    def stats(self) -> dict:
        """Sizes and counts, for logs and benchmarks."""
        with self._lock:
            pragma = {name: self._db.execute(f'PRAGMA {name}').fetchone()[0]
                      for name in ('page_count', 'freelist_count',
                                   'page_size', 'auto_vacuum')}
            counts = self._db.execute(
                'SELECT (SELECT COUNT(*) FROM instances), '
                '(SELECT COUNT(*) FROM migrations), '
                '(SELECT COUNT(*) FROM migrations WHERE ended_at IS NOT NULL)'
            ).fetchone()
            db_bytes = self._sizes()
        return {'bytes': db_bytes, **pragma, 'instances': counts[0],
                'migrations': counts[1], 'ended_migrations': counts[2]}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def inspect(path: str) -> dict:
    """What the file at ``path`` is, read without changing it (no upgrade,
    no creation): for ``nova-rt-manage store recover``.

    ``{'state': 'missing' | 'empty' | 'ok' | 'newer' | 'damaged' |
    'unreadable', 'reason': str, 'root_provider_uuid', 'instances',
    'migrations'}``; 'empty' is 0 bytes, no tables yet, or nothing of a
    node in them.
    """
    found = {'state': 'ok', 'reason': '', 'root_provider_uuid': None,
             'instances': 0, 'migrations': 0}
    if not os.path.exists(path):
        return dict(found, state='missing', reason='does not exist')
    if os.path.getsize(path) == 0 and not os.path.exists(path + '-wal'):
        return dict(found, state='empty', reason='is 0 bytes')
    try:
        db = sqlite3.connect(
            f'file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro',
            uri=True)
    except sqlite3.Error as exc:
        return dict(found, state='unreadable', reason=str(exc))
    try:
        problems = [row[0] for row in
                    db.execute('PRAGMA integrity_check(5)') if row[0] != 'ok']
        if problems:
            return dict(found, state='damaged',
                        reason='fails its integrity check: '
                               + '; '.join(problems)[:300])
        version = db.execute('PRAGMA user_version').fetchone()[0]
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if version > SCHEMA_VERSION:
            return dict(found, state='newer',
                        reason=f'has schema version {version}, newer than '
                               f'this nova_rt ({SCHEMA_VERSION})')
        if version == 0 and not tables:
            return dict(found, state='empty', reason='has no tables')
        if _TABLES - tables:
            return dict(found, state='damaged', reason='lacks tables '
                        + ', '.join(sorted(_TABLES - tables)))
        row = db.execute("SELECT value FROM meta WHERE "
                         "key='root_provider_uuid'").fetchone()
        found['root_provider_uuid'] = json.loads(row[0]) if row else None
        found['instances'] = db.execute(
            'SELECT COUNT(*) FROM instances').fetchone()[0]
        found['migrations'] = db.execute(
            'SELECT COUNT(*) FROM migrations WHERE ended_at IS NULL'
        ).fetchone()[0]
        if not (found['root_provider_uuid'] or found['instances']
                or found['migrations']):
            # What a start makes of a missing file before it is refused.
            return dict(found, state='empty', reason='holds no record of '
                        'this node (no root provider uuid)')
        return found
    except sqlite3.OperationalError as exc:
        return dict(found, state='unreadable', reason=str(exc))
    except (sqlite3.DatabaseError, ValueError) as exc:
        return dict(found, state='damaged', reason=str(exc))
    finally:
        db.close()


def store_path(state_path: str, name: str = 'compute.sqlite') -> str:
    return os.path.join(state_path, name)


def open_store(state_path: str, name: str = 'compute.sqlite',
               synchronous: Optional[str] = None) -> ClaimStore:
    return ClaimStore(store_path(state_path, name),
                      synchronous=synchronous or 'FULL')
