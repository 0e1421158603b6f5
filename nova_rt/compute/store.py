"""The compute daemon's local store: SQLite in WAL mode.

Every change the tracker makes for one RPC call is written in one
transaction before the caller hears yes, so a crash (even SIGKILL) at any
moment loses no acknowledged claim and leaves no half-applied one.  The
schema is versioned with ``PRAGMA user_version`` and upgraded in order at
open time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from typing import Optional

#: Schema migrations, applied in order; index + 1 is the version they reach.
MIGRATIONS = (
    """
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
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
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
        self.migrations[uuid] = None

    def set_meta(self, key: str, value) -> None:
        self.meta[key] = value

    def __bool__(self):
        return bool(self.instances or self.migrations or self.meta)


class ClaimStore:
    """SQLite file under ``state_path``; safe to share between threads."""

    def __init__(self, path: str, synchronous: str = 'FULL'):
        self.path = path
        if path != ':memory:':
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        # The state holds tenants' claims: readable by the service user only.
        old_umask = os.umask(0o077)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False,
                                       isolation_level=None)
        finally:
            os.umask(old_umask)
        self._db.execute('PRAGMA journal_mode=WAL')
        # FULL: a commit is on disk before the caller is told yes, even across
        # a power loss; NORMAL would survive only a process crash.
        if synchronous not in ('FULL', 'NORMAL'):
            raise StoreError(f'unknown synchronous mode {synchronous!r}')
        self._db.execute(f'PRAGMA synchronous={synchronous}')
        self._upgrade()

    def _upgrade(self) -> None:
        with self._lock:
            version = self._db.execute('PRAGMA user_version').fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f'{self.path} has schema version {version}, newer than '
                    f'this nova_rt ({SCHEMA_VERSION}); refusing to downgrade')
            for index in range(version, SCHEMA_VERSION):
                with self._transaction():
                    for statement in MIGRATIONS[index].split(';'):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f'PRAGMA user_version={index + 1}')

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction; rolled back whole on any error."""
        self._db.execute('BEGIN IMMEDIATE')
        try:
            yield
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        self._db.execute('COMMIT')

    def apply(self, changes: Changes) -> None:
        """Write ``changes`` atomically; raises and writes nothing on error."""
        if not changes:
            return
        inst_rows = [(uuid, None if rec is None else json.dumps(rec.to_dict()))
                     for uuid, rec in changes.instances.items()]
        mig_rows = [(uuid, rec.migration.instance_uuid, rec.seq, rec.ended_at,
                     json.dumps(rec.to_dict()))
                    for uuid, rec in changes.migrations.items()
                    if rec is not None]
        mig_gone = [(uuid,) for uuid, rec in changes.migrations.items()
                    if rec is None]
        with self._lock, self._transaction():
            for uuid, data in inst_rows:
                if data is None:
                    self._db.execute('DELETE FROM instances WHERE uuid=?',
                                     (uuid,))
                else:
                    self._db.execute(
                        'INSERT OR REPLACE INTO instances (uuid, data) '
                        'VALUES (?, ?)', (uuid, data))
            self._db.executemany('DELETE FROM migrations WHERE uuid=?',
                                 mig_gone)
            self._db.executemany(
                'INSERT OR REPLACE INTO migrations (uuid, instance_uuid, seq, '
                'ended_at, data) VALUES (?, ?, ?, ?, ?)', mig_rows)
            for key, value in changes.meta.items():
                self._db.execute(
                    'INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)',
                    (key, json.dumps(value)))

    def load(self) -> tuple:
        """(instance dicts, migration dicts) as stored."""
        with self._lock:
            instances = [json.loads(row[0]) for row in
                         self._db.execute('SELECT data FROM instances')]
            migrations = [json.loads(row[0]) for row in self._db.execute(
                'SELECT data FROM migrations ORDER BY seq')]
        return instances, migrations

    def get_meta(self, key: str, default=None):
        with self._lock:
            row = self._db.execute('SELECT value FROM meta WHERE key=?',
                                   (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value) -> None:
        changes = Changes()
        changes.set_meta(key, value)
        self.apply(changes)

    def prune_ended_migrations(self, before: float) -> int:
        """Forget migrations that ended before ``before`` (a time.time())."""
        with self._lock:
            cursor = self._db.execute(
                'DELETE FROM migrations WHERE ended_at IS NOT NULL '
                'AND ended_at < ?', (before,))
            return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(state_path: str, name: str = 'compute.sqlite',
               synchronous: Optional[str] = None) -> ClaimStore:
    return ClaimStore(os.path.join(state_path, name),
                      synchronous=synchronous or 'FULL')
