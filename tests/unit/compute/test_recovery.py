"""Writing a rebuilt store: in place of the old one, which is kept aside."""

import os
import subprocess
import sys
import uuid

from nova_rt.compute import rebuild
from nova_rt.compute import recovery
from nova_rt.compute import store as store_mod

ROOT = str(uuid.uuid4())


def sources(consumers):
    root = {'uuid': ROOT, 'name': 'cmp-1', 'inventories': {},
            'usages': rebuild.total(c.resources[ROOT] for c in consumers)}
    return rebuild.Sources(root=root, providers={ROOT: root},
                           consumers={c.uuid: c for c in consumers},
                           consumers_from='the placement database',
                           listed_all=True)


def consumer(resources):
    return rebuild.Consumer(str(uuid.uuid4()), {ROOT: resources}, 'p1', 'u1')


def test_write_keeps_the_old_file_and_its_wal_aside(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    for suffix, data in (('', b'garbage'), ('-wal', b'old wal'), ('-shm', b'')):
        with open(path + suffix, 'wb') as f:
            f.write(data)
    recovered = rebuild.plan(sources([consumer({'VCPU': 1, 'MEMORY_MB': 64})]))
    aside = recovery.write(path, recovered, now=0)
    assert aside.startswith(f'{path}.before-recovery-1970')
    with open(aside + '-wal', 'rb') as f:
        assert f.read() == b'old wal'
    assert not os.path.exists(path + '-wal')
    assert store_mod.inspect(path)['root_provider_uuid'] == ROOT
    assert store_mod.inspect(path)['instances'] == 1
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'


def test_a_store_open_in_another_process_is_seen(tmp_path):
    path = str(tmp_path / 'compute.sqlite')
    store_mod.ClaimStore(path).close()
    assert recovery.holders(path) == []
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sqlite3, sys, time; '
         'db = sqlite3.connect(sys.argv[1]); db.execute("SELECT 1"); '
         'print("open", flush=True); time.sleep(60)', path],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'open'
        assert recovery.holders(path) == [holder.pid]
    finally:
        holder.kill()
        holder.wait()
    assert recovery.move_aside(str(tmp_path / 'nothing.sqlite')) is None
