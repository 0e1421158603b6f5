"""The local store: refusals an operator can act on, writes that lose
nothing when the disk is full, and a file that stays as small as it holds."""

import json
import os
import sqlite3
import subprocess
import uuid

import pytest

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import claims
from nova_rt.compute import store as store_mod

FLAVOR = objects.Flavor(name='m1.small', vcpus=2, memory_mb=2048, root_gb=20,
                        ephemeral_gb=0, swap=0,
                        extra_specs={'hw:mem_page_size': 'small'})


def _instance_record(uuid_=None, padding=0):
    inst = objects.Instance(uuid=uuid_ or str(uuid.uuid4()),
                            project_id='p' * 32, user_id='u' * 32,
                            flavor=FLAVOR, vm_state='active', os_type='linux')
    claim = claims.Claim(claim_id=str(uuid.uuid4()), instance_uuid=inst.uuid,
                         migration_uuid=None, flavor=FLAVOR,
                         resources={'VCPU': 2, 'MEMORY_MB': 2048,
                                    'DISK_GB': 20 + padding})
    return claims.InstanceRecord(instance=inst, claim=claim)


def _migration_record(seq, ended_at=None, status='confirmed'):
    rec = _instance_record()
    mig = objects.Migration(
        uuid=str(uuid.uuid4()), instance_uuid=rec.uuid,
        migration_type='resize', status=status, source_compute='a',
        source_node='a', dest_compute='b', dest_node='b', old_flavor=FLAVOR,
        new_flavor=FLAVOR)
    return claims.MigrationRecord(migration=mig, instance=rec.instance,
                                  seq=seq, claim=None, ended_at=ended_at)


def _apply(store, put=(), drop=(), put_migrations=(), drop_migrations=()):
    changes = store_mod.Changes()
    for rec in put:
        changes.put_instance(rec)
    for uuid_ in drop:
        changes.delete_instance(uuid_)
    for rec in put_migrations:
        changes.put_migration(rec)
    for uuid_ in drop_migrations:
        changes.delete_migration(uuid_)
    store.apply(changes)


def _pragma(store, name):
    return store._db.execute(f'PRAGMA {name}').fetchone()[0]


# --- opening ------------------------------------------------------------------


def test_new_store_is_durable_and_compactable(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    assert not store.existed
    assert _pragma(store, 'journal_mode') == 'wal'
    assert _pragma(store, 'synchronous') == 2          # FULL
    assert _pragma(store, 'auto_vacuum') == 2          # INCREMENTAL
    assert _pragma(store, 'user_version') == store_mod.SCHEMA_VERSION
    store.close()
    again = store_mod.open_store(str(tmp_path))
    assert again.existed and again.size_at_open > 0


def test_store_of_version_1_is_upgraded_keeping_its_rows(tmp_path):
    path = tmp_path / 'compute.sqlite'
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.executescript(store_mod.MIGRATIONS[0])
    rec = _instance_record()
    db.execute('INSERT INTO instances VALUES (?, ?)',
               (rec.uuid, json.dumps(rec.to_dict())))
    db.execute("INSERT INTO meta VALUES ('root_provider_uuid', '\"r1\"')")
    db.execute('PRAGMA user_version=1')
    assert db.execute('PRAGMA auto_vacuum').fetchone()[0] == 0
    db.close()

    store = store_mod.ClaimStore(str(path))
    assert _pragma(store, 'auto_vacuum') == 2
    assert _pragma(store, 'user_version') == store_mod.SCHEMA_VERSION
    instances, _ = store.load()
    assert claims.InstanceRecord.from_dict(instances[0]) == rec
    assert store.get_meta('root_provider_uuid') == 'r1'


def test_zero_length_file_opens_as_a_new_store(tmp_path):
    path = tmp_path / 'compute.sqlite'
    path.write_bytes(b'')
    store = store_mod.ClaimStore(str(path))
    assert store.existed and store.size_at_open == 0
    assert store.load() == ([], [])


def test_not_a_database_is_refused_naming_file_and_fix(tmp_path):
    path = tmp_path / 'compute.sqlite'
    path.write_bytes(b'this is not SQLite at all' * 200)
    with pytest.raises(exception.LocalStoreCorrupt) as err:
        store_mod.ClaimStore(str(path))
    message = str(err.value)
    assert str(path) in message
    assert 'store recover' in message and 'backup' in message
    assert 'sqlite3' not in type(err.value).__module__


def test_failed_integrity_check_is_refused(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store = store_mod.ClaimStore(path)
    for seq in range(50):
        _apply(store, put_migrations=[_migration_record(seq)])
    store.close()
    # Make the index disagree with its table, as a torn page would.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA writable_schema=ON')
    db.execute("UPDATE sqlite_master SET sql='CREATE INDEX migrations_instance "
               "ON migrations (uuid)' WHERE name='migrations_instance'")
    db.close()
    with pytest.raises(exception.LocalStoreCorrupt) as err:
        store_mod.ClaimStore(path)
    assert 'integrity check' in str(err.value)
    assert path in str(err.value)


def test_schema_newer_than_the_code_is_refused(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store_mod.ClaimStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f'PRAGMA user_version={store_mod.SCHEMA_VERSION + 1}')
    db.close()
    with pytest.raises(exception.LocalStoreError) as err:
        store_mod.ClaimStore(path)
    assert 'newer than this nova_rt' in str(err.value)
    assert 'never downgraded' in str(err.value)


def test_store_without_its_tables_is_refused(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store_mod.ClaimStore(path).close()
    db = sqlite3.connect(path)
    db.execute('DROP TABLE meta')
    db.close()
    with pytest.raises(exception.LocalStoreCorrupt, match='no table meta'):
        store_mod.ClaimStore(path)


def test_row_that_is_not_json_is_refused_at_load(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store = store_mod.ClaimStore(path)
    store._db.execute("INSERT INTO instances VALUES ('i-1', '{torn')")
    with pytest.raises(exception.LocalStoreCorrupt, match='instances row i-1'):
        store.load()


# --- writes that fail ---------------------------------------------------------


def test_full_database_is_a_named_error_and_loses_nothing(tmp_path):
    store = store_mod.ClaimStore(str(tmp_path / 'compute.sqlite'))
    kept = _instance_record()
    _apply(store, put=[kept])
    before = store.load()
    # No page beyond the current ones: the next growth fails as a full disk.
    store._db.execute(f'PRAGMA max_page_count={_pragma(store, "page_count")}')
    big = [_instance_record() for _ in range(40)]
    with pytest.raises(exception.ComputeResourcesUnavailable) as err:
        _apply(store, put=big, drop=[kept.uuid])
    message = str(err.value)
    assert 'local state store' in message and str(tmp_path) in message
    assert 'free space' in message and 'nothing was changed' in message
    assert not store._db.in_transaction
    assert store.load() == before
    # Room again: the same write goes through.
    store._db.execute('PRAGMA max_page_count=1000000')
    _apply(store, put=big, drop=[kept.uuid])
    assert len(store.load()[0]) == 40


def test_locked_database_is_a_named_error(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store = store_mod.ClaimStore(path)
    store._db.execute('PRAGMA busy_timeout=50')
    other = sqlite3.connect(path, isolation_level=None)
    other.execute('BEGIN IMMEDIATE')
    try:
        with pytest.raises(exception.ComputeResourcesUnavailable,
                           match='other process that holds it'):
            _apply(store, put=[_instance_record()])
    finally:
        other.execute('ROLLBACK')
    _apply(store, put=[_instance_record()])
    assert len(store.load()[0]) == 1


def _mount_tmpfs(path, size):
    path.mkdir()
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}',
                             'tmpfs', str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {result.stderr.decode()[:200]}')


def _fill(path):
    with open(path, 'wb', buffering=0) as f:
        try:
            while True:
                f.write(b'\0' * 4096)
        except OSError:
            pass


def test_full_file_system_is_a_named_error_and_loses_nothing(tmp_path):
    mount = tmp_path / 'small'
    _mount_tmpfs(mount, '256k')
    store = None
    try:
        store = store_mod.open_store(str(mount))
        _apply(store, put=[_instance_record()])
        ballast = mount / 'ballast'
        _fill(ballast)
        committed = 1
        with pytest.raises(exception.ComputeResourcesUnavailable) as err:
            # Enough to need pages the WAL does not have yet.
            for _ in range(50):
                _apply(store, put=[_instance_record() for _ in range(20)])
                committed += 20
        assert 'full' in str(err.value) and str(mount) in str(err.value)
        assert not store._db.in_transaction
        # The failed call wrote nothing, the ones before it are all there.
        assert len(store.load()[0]) == committed
        ballast.unlink()
        _apply(store, put=[_instance_record()])
        assert len(store.load()[0]) == committed + 1
    finally:
        if store is not None:
            store.close()
        subprocess.run(['umount', '-l', str(mount)], check=False)


# --- staying small ------------------------------------------------------------


def test_delete_migration(tmp_path):
    store = store_mod.ClaimStore(str(tmp_path / 'compute.sqlite'))
    one, two = _migration_record(1, ended_at=10.0), _migration_record(2)
    _apply(store, put_migrations=[one, two])
    _apply(store, drop_migrations=[one.uuid])
    assert [m['migration']['uuid'] for m in store.load()[1]] == [two.uuid]


def test_prune_by_age_and_by_count_keeps_the_newest(tmp_path):
    store = store_mod.ClaimStore(str(tmp_path / 'compute.sqlite'))
    ended = [_migration_record(seq, ended_at=1000.0 + seq) for seq in range(10)]
    running = _migration_record(99, status='migrating')
    _apply(store, put_migrations=ended + [running])

    forgotten = store.prune_ended_migrations(before=1003.0, keep=None)
    assert sorted(forgotten) == sorted(m.uuid for m in ended[:3])
    forgotten = store.prune_ended_migrations(before=0.0, keep=4)
    assert sorted(forgotten) == sorted(m.uuid for m in ended[3:6])
    left = {m['migration']['uuid'] for m in store.load()[1]}
    assert left == {m.uuid for m in ended[6:]} | {running.uuid}
    assert store.prune_ended_migrations(before=0.0, keep=0) != []
    assert [m['migration']['uuid'] for m in store.load()[1]] == [running.uuid]


def test_compact_gives_freed_pages_back(tmp_path):
    store = store_mod.ClaimStore(str(tmp_path / 'compute.sqlite'))
    small = store.stats()['bytes']
    records = [_instance_record() for _ in range(2000)]
    for start in range(0, len(records), 100):
        _apply(store, put=records[start:start + 100])
    grown = store.stats()
    _apply(store, drop=[r.uuid for r in records])
    result = store.compact()
    assert result['freed_pages'] > 0
    stats = store.stats()
    assert stats['freelist_count'] == 0
    assert os.path.getsize(store.path + '-wal') == 0
    assert stats['bytes'] < grown['bytes'] / 4
    assert stats['bytes'] <= small * 2
    # Still the same durable store.
    _apply(store, put=[records[0]])
    assert len(store.load()[0]) == 1


# --- inspecting a file without changing it ------------------------------------


def test_inspect_names_what_the_file_is(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    assert store_mod.inspect(path)['state'] == 'missing'
    open(path, 'w').close()
    assert store_mod.inspect(path)['state'] == 'empty'
    store = store_mod.ClaimStore(path)
    found = store_mod.inspect(path)
    assert (found['state'], found['reason']) == (
        'empty', 'holds no record of this node (no root provider uuid)')
    store.set_meta('root_provider_uuid', 'r1')
    _apply(store, put=[_instance_record()],
           put_migrations=[_migration_record(1, status='migrating'),
                           _migration_record(2, ended_at=5.0)])
    found = store_mod.inspect(path)
    assert found == {'state': 'ok', 'reason': '', 'root_provider_uuid': 'r1',
                     'instances': 1, 'migrations': 1}
    store._db.execute(f'PRAGMA user_version={store_mod.SCHEMA_VERSION + 1}')
    assert store_mod.inspect(path)['state'] == 'newer'
    store.close()
    with open(path, 'r+b') as f:
        f.write(b'garbage!' * 16)
    assert store_mod.inspect(path)['state'] == 'damaged'
    assert os.path.getsize(path) > 0 and not os.path.exists(path + '.recovering')
