"""The compute table of methods and what comes from it: endpoint, client,
notifications, docs.  Every bad call is refused before the tracker runs."""

import copy
import inspect
import os

import oslo_messaging as messaging
import pytest

from nova_rt import exception
from nova_rt import rpc
from nova_rt import validation
from nova_rt.compute import manager as manager_mod
from nova_rt.compute import methods
from nova_rt.compute import notifications
from nova_rt.compute import rpcapi
from tests.unit.compute.test_schemas import UUID2
from tests.unit.compute.test_schemas import VALID

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc',
                   'source', 'rpc-api.rst')


class RecordingTracker:
    """Each spec method, with the spec's keywords, recording its calls."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name not in methods.TABLE:
            raise AttributeError(name)
        method = methods.TABLE[name]

        def handler(**kwargs):
            self.calls.append((name, kwargs))
            return {}
        handler.__signature__ = inspect.Signature([
            inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY,
                              default=arg.default)
            for arg in method.arguments])
        return handler


def _refusal(mgr, name, arguments) -> exception.NovaRtException:
    with pytest.raises(messaging.ExpectedException) as info:
        getattr(mgr, name)({}, **arguments)
    error = info.value.exc_info[1]
    assert isinstance(error, exception.InvalidInput), error
    return error


def _required(name):
    return [a.name for a in methods.TABLE[name].arguments if a.required]


@pytest.mark.parametrize('name, missing', [
    (name, arg) for name in VALID for arg in _required(name)])
def test_a_missing_argument_is_named_and_nothing_runs(name, missing):
    tracker = RecordingTracker()
    mgr = manager_mod.ComputeManager(tracker)
    arguments = {k: v for k, v in copy.deepcopy(VALID[name]).items()
                 if k != missing}
    assert str(_refusal(mgr, name, arguments)) == \
        f'Invalid input: {missing}: is required'
    assert tracker.calls == []


@pytest.mark.parametrize('name', sorted(VALID))
@pytest.mark.parametrize('extra', ['force', 'context', 'self'])
def test_an_unknown_argument_is_named_and_nothing_runs(name, extra):
    tracker = RecordingTracker()
    mgr = manager_mod.ComputeManager(tracker)
    arguments = dict(copy.deepcopy(VALID[name]), **{extra: True})
    assert str(_refusal(mgr, name, arguments)) == \
        f'Invalid input: {extra}: is not an argument of {name}'
    assert tracker.calls == []


@pytest.mark.parametrize('name, argument, wrong', [
    (name, arg.name, wrong) for name in VALID
    for arg in methods.TABLE[name].arguments
    for wrong in (12345, 'x' * 300, ['list'], {'a': 1})
    # {'a': 1} is a valid alias count, not a wrong one.
    if not (arg.name == 'alias_counts' and wrong == {'a': 1})])
def test_a_mistyped_argument_is_named_and_nothing_runs(name, argument, wrong):
    tracker = RecordingTracker()
    mgr = manager_mod.ComputeManager(tracker)
    arguments = dict(copy.deepcopy(VALID[name]), **{argument: wrong})
    assert str(_refusal(mgr, name, arguments)).startswith(
        f'Invalid input: {argument}')
    assert tracker.calls == []


@pytest.mark.parametrize('name', sorted(VALID))
def test_a_valid_call_reaches_the_tracker_with_the_spec_keywords(name):
    tracker = RecordingTracker()
    mgr = manager_mod.ComputeManager(tracker, run_audit=None)
    getattr(mgr, name)({}, **copy.deepcopy(VALID[name]))
    [(called, kwargs)] = tracker.calls
    assert called == name
    assert set(kwargs) == {a.name for a in methods.TABLE[name].arguments}


class TrackerBeforeTheMigrationArgument:
    """update_migration as the tracker had it before ``migration``."""

    def __init__(self):
        self.calls = []

    def update_migration(self, migration_uuid, status):
        self.calls.append((migration_uuid, status))


def test_update_migration_passes_migration_only_to_a_tracker_that_takes_it():
    old = TrackerBeforeTheMigrationArgument()
    mgr = manager_mod.ComputeManager(old)
    mgr.update_migration({}, migration_uuid=UUID2, status='finished')
    mgr.update_migration({}, migration_uuid=UUID2, status='finished',
                         migration=None)
    assert old.calls == [(UUID2, 'finished')] * 2
    payload = VALID['drop_move_claim_at_source']['migration']
    error = _refusal(mgr, 'update_migration', {
        'migration_uuid': UUID2, 'status': 'finished', 'migration': payload})
    assert str(error).startswith('Invalid input: migration: ')
    assert len(old.calls) == 2

    new = RecordingTracker()
    mgr = manager_mod.ComputeManager(new)
    mgr.update_migration({}, migration_uuid=UUID2, status='finished')
    mgr.update_migration({}, migration_uuid=UUID2, status='finished',
                         migration=payload)
    assert [kwargs['migration'] for _, kwargs in new.calls] == [None, payload]


def test_a_refusal_is_logged_short(caplog):
    mgr = manager_mod.ComputeManager(RecordingTracker())
    instance = dict(VALID['instance_claim']['instance'], user_id='u' * 120_000)
    with caplog.at_level('INFO', logger='nova_rt.compute.manager'):
        _refusal(mgr, 'instance_claim', {'instance': instance})
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith('instance_claim refused: InvalidInput: ')
    assert len(line) < 300


def test_every_string_list_and_mapping_has_a_limit():
    for method in methods.TABLE:
        for arg in method.arguments:
            assert validation.unbounded(arg.schema, arg.name) == [], method.name


def test_events_come_from_the_table():
    sent = []

    class Notifier:
        def is_enabled(self):
            return True

        def info(self, context, event_type, payload):
            sent.append(event_type)

    notifier = notifications.ComputeNotifier(Notifier())
    for method in methods.TABLE:
        notifier.notify({}, method.name, {}, {})
    assert sent == [m.event[0] + '.end' for m in methods.TABLE if m.event]
    assert 'compute.instance.claim.end' in sent



@pytest.mark.parametrize('drivers, enabled', [
    ([], False), (['noop'], False), (['messagingv2'], True),
    (['noop', 'log'], True)])
def test_notifications_are_on_only_with_a_driver(drivers, enabled):
    # oslo.messaging's Notifier.is_enabled() is true with no driver (its
    # default): every claim built a notification that went nowhere.
    from oslo_config import cfg
    conf = cfg.ConfigOpts()
    conf([])
    # A Notifier registers [oslo_messaging_notifications] driver.
    messaging.Notifier(messaging.get_notification_transport(
        conf, url='fake://'), publisher_id='x')
    conf.set_override('driver', drivers, 'oslo_messaging_notifications')
    notifier = notifications.ComputeNotifier.from_conf(conf, 'h1')
    assert notifier.enabled is enabled
    notifier.stop()


def _recording_client(version_cap=None):
    calls = []

    class Prepared:
        def __init__(self, version):
            self.version = version

        def call(self, context, method, **kwargs):
            calls.append((self.version, kwargs))

    api = rpcapi.ComputeAPI.__new__(rpcapi.ComputeAPI)
    api.versions = rpc.VersionCaps(methods.TABLE, 'compute', version_cap)
    api.client = type('C', (), {
        'prepare': lambda self, **kw: Prepared(kw['version'])})()
    return api, calls


def test_the_client_sends_migration_only_when_there_is_one():
    api, calls = _recording_client()
    api.update_migration({}, 'h1', UUID2, 'finished')
    api.update_migration({}, 'h1', UUID2, 'finished', migration={'uuid': UUID2})
    # At the lowest version each call needs: 1.0 daemons take the first.
    assert calls == [('1.0', {'migration_uuid': UUID2, 'status': 'finished'}),
                     ('1.1', {'migration_uuid': UUID2, 'status': 'finished',
                              'migration': {'uuid': UUID2}})]


@pytest.mark.parametrize('cap', ['1.0', '2026.2'])
def test_a_client_capped_at_1_0_leaves_the_1_1_argument_out(cap):
    api, calls = _recording_client(cap)
    api.update_migration({}, 'h1', UUID2, 'finished', migration={'uuid': UUID2})
    assert calls == [('1.0', {'migration_uuid': UUID2, 'status': 'finished'})]
    assert not api.can_send_version('1.1')


def test_the_docs_name_every_method_as_the_table_does():
    with open(DOC) as f:
        text = f.read()
    for method in methods.TABLE:
        assert f'``{methods.TABLE.signature(method.name)}``' in text
