"""A lost store: the start-up check refuses to start on it (or adopts an
idle provider, or starts a new host) and never wipes placement; a rebuilt
store replaces the old one, which is kept aside."""

import os
import subprocess
import sys
import types
import uuid

import pytest

from nova_rt import exception
from nova_rt.compute import rebuild
from nova_rt.compute import recovery
from nova_rt.compute import reporter
from nova_rt.compute import store as store_mod
from tests.unit.compute.recovery_fakes import HOST, ROOT, consumer, provider, sources

CONF = types.SimpleNamespace(host=HOST, config_file=['/etc/nova_rt/nova-rt.conf'])


class Unreachable(Exception):
    """What oslo.messaging raises when nothing answers (matched by name)."""


Unreachable.__name__ = 'MessagingTimeout'


class FakePlacement:
    """The read methods of PlacementAPI over a dict of providers."""

    def __init__(self, providers=(), allocations=None, failures=()):
        self.providers = {p['uuid']: p for p in providers}
        self.allocations = allocations or {}
        self.failures = list(failures)
        self.calls = 0

    def _fail(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    def list_resource_providers(self, context, name=None, in_tree=None, **_):
        self._fail()
        found = list(self.providers.values())
        if name is not None:
            found = [p for p in found if p['name'] == name]
        if in_tree is not None:
            found = [p for p in found if p['root_uuid'] == in_tree]
        return [{k: p[k] for k in ('uuid', 'name', 'host', 'parent_uuid',
                                   'root_uuid', 'last_heartbeat')}
                for p in found]

    def get_resource_provider(self, context, uuid):
        self._fail()
        return dict(self.providers[uuid])

    def get_allocations(self, context, consumer_uuid):
        self._fail()
        return self.allocations.get(consumer_uuid, {})


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


# --- the check at start -------------------------------------------------------


def test_store_that_knows_its_node_asks_nobody(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    store.set_meta(reporter.ROOT_UUID_KEY, ROOT)
    placement = FakePlacement(failures=[AssertionError('asked')])
    recovery.check_at_start(CONF, store, placement)
    assert placement.calls == 0


def test_missing_store_with_allocations_refuses_and_leaves_no_file(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    placement = FakePlacement([provider(usages={'VCPU': 3, 'MEMORY_MB': 384})])
    with pytest.raises(exception.LocalStoreLost) as err:
        recovery.check_at_start(CONF, store, placement)
    message = str(err.value)
    assert store.path in message and 'is missing' in message
    assert f'root provider {ROOT}: MEMORY_MB=384, VCPU=3' in message
    assert ('nova-rt-manage --config-file /etc/nova_rt/nova-rt.conf store '
            'recover') in message
    assert 'backup' in message
    assert not os.path.exists(store.path)


def test_empty_store_with_allocations_on_a_child_refuses(tmp_path):
    (tmp_path / 'compute.sqlite').write_bytes(b'')
    store = store_mod.open_store(str(tmp_path))
    child = str(uuid.uuid4())
    placement = FakePlacement([
        provider(), provider(child, usages={'CUSTOM_PCI_8086_10ED': 1},
                             parent=ROOT, name=f'{HOST}_0000:81:00.0')])
    with pytest.raises(exception.LocalStoreLost, match=r'is empty \(0 bytes\)'):
        recovery.check_at_start(CONF, store, placement)
    assert os.path.exists(store.path)      # it was there before: kept


def test_idle_tree_is_adopted(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    old = str(uuid.uuid4())
    placement = FakePlacement([
        provider(old, heartbeat='2026-01-01T00:00:00'),
        provider(ROOT, heartbeat='2026-05-01T00:00:00'),
        provider(str(uuid.uuid4()), name='other-host')])
    recovery.check_at_start(CONF, store, placement)
    assert store.get_meta(reporter.ROOT_UUID_KEY) == ROOT


def test_new_host_starts(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    recovery.check_at_start(CONF, store, FakePlacement())
    assert store.get_meta(reporter.ROOT_UUID_KEY) is None
    assert os.path.exists(store.path)


def test_unreachable_placement_waits_then_refuses(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    clock = Clock()
    placement = FakePlacement(failures=[Unreachable('no reply')] * 100)
    with pytest.raises(exception.LocalStoreLost) as err:
        recovery.check_at_start(CONF, store, placement, wait=60, clock=clock,
                                sleep=clock.sleep)
    assert 'did not answer within 60s (MessagingTimeout)' in str(err.value)
    assert 'store recover' in str(err.value)
    assert clock.now == 60 and placement.calls == 13
    assert not os.path.exists(store.path)


def test_placement_that_comes_back_in_time_is_heard(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    clock = Clock()
    placement = FakePlacement([provider(usages={'VCPU': 1})],
                              failures=[Unreachable('no reply')] * 2)
    with pytest.raises(exception.LocalStoreLost, match='holds allocations'):
        recovery.check_at_start(CONF, store, placement, clock=clock,
                                sleep=clock.sleep)
    assert clock.now == 10


def test_refusal_from_placement_is_not_waited_for(tmp_path):
    store = store_mod.open_store(str(tmp_path))
    refused = exception.NotAuthorized(reason='unsigned')
    clock = Clock()
    with pytest.raises(exception.LocalStoreLost,
                       match=r'placement refused to say \(NotAuthorized\)'):
        recovery.check_at_start(CONF, store, FakePlacement(failures=[refused]),
                                clock=clock, sleep=clock.sleep)
    assert clock.now == 0


# --- writing the rebuilt store ------------------------------------------------


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
