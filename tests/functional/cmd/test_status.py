"""``nova-rt-status upgrade check`` as an operator runs it: real RabbitMQ,
libvirt's test driver and a placement database."""

import json
import pathlib
import subprocess
import sys

from nova_rt.identity import keys
from tests.functional.virt import hostxml

STATUS = pathlib.Path(sys.executable).with_name('nova-rt-status')
RABBIT = 'rabbit://guest:guest@127.0.0.1:5672/'


def _check(tmp_path, body):
    path = tmp_path / 'nova-rt.conf'
    path.write_text(body)
    result = subprocess.run(
        [str(STATUS), '--config-file', str(path), 'upgrade', 'check', '--json'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        cwd=tmp_path)
    assert 's3cret' not in result.stdout + result.stderr
    report = {c['check']: c for c in json.loads(result.stdout)['checks']}
    return result.returncode, report


def _state(tmp_path, mode=0o700):
    state = tmp_path / 'state'
    state.mkdir()
    state.chmod(mode)
    return state


def _identity(tmp_path, enforce=True):
    keys_dir = tmp_path / 'keys'
    keys.create_key(str(keys_dir), 'host-a')
    return (f'[DEFAULT]\nhost = host-a\n[identity]\nkeys_dir = {keys_dir}\n'
            f'enforce = {enforce}\n')


def _compute_host(tmp_path):
    """A good host's configuration, with nothing of placement in it."""
    return _identity(tmp_path) + f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
[libvirt]
connection_uri = test:///default
'''


def test_good_host_passes(tmp_path):
    code, report = _check(tmp_path, _compute_host(tmp_path))
    assert code == 0, report
    assert {c['result'] for c in report.values()} == {0}
    assert set(report) == {'Configuration', 'Message signatures',
                           'Transport URL', 'Message broker',
                           'Placement database', 'State directory',
                           'Claim store', 'Libvirt', 'Reserved amounts'}
    assert 'TEST' in report['Libvirt']['details']


def test_signatures_off_or_a_key_others_can_read_are_warnings(tmp_path):
    config = _identity(tmp_path, enforce=False) + f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
[libvirt]
connection_uri = test:///default
'''
    code, report = _check(tmp_path, config)
    assert code == 1
    assert report['Message signatures']['result'] == 1
    assert 'enforce is off' in report['Message signatures']['details']
    key = tmp_path / 'keys' / 'host-a.key'
    key.chmod(0o644)
    code, report = _check(tmp_path, config.replace('enforce = False',
                                                   'enforce = True'))
    details = report['Message signatures']['details']
    assert report['Message signatures']['result'] == 1
    assert f'{key} has mode 0644' in details and 'enforce' not in details


def test_enforce_without_a_key_fails_and_names_the_fix(tmp_path):
    code, report = _check(tmp_path, f'''[DEFAULT]
host = host-a
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
[identity]
enforce = true
keys_dir = {tmp_path}
[libvirt]
connection_uri = test:///default
''')
    assert code == 2
    details = report['Configuration']['details']
    assert '[identity] key_file' in details
    assert 'nova-rt-manage identity create-key host-a' in details


def test_bad_config_fails_with_the_option_named(tmp_path):
    code, report = _check(tmp_path, f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {tmp_path}/missing
[compute]
cpu_shared_set = 0-3
cpu_dedicated_set = 3-5
[libvirt]
connection_uri = test:///default
''')
    assert code == 2
    assert report['Configuration']['result'] == 2
    assert 'overlap on CPUs 3' in report['Configuration']['details']


def test_default_transport_and_open_state_dir_are_warnings(tmp_path):
    state = _state(tmp_path, 0o755)
    code, report = _check(tmp_path, f'[DEFAULT]\nstate_path = {state}\n'
                                    '[libvirt]\nconnection_uri = test:///default\n')
    assert report['Transport URL']['result'] == 1
    assert report['State directory']['result'] == 1
    assert '0755' in report['State directory']['details']
    assert code in (1, 2)


def test_broker_refusal_database_behind_and_libvirt_down_fail(tmp_path):
    db = tmp_path / 'placement.sqlite'
    db.touch()
    code, report = _check(tmp_path, f'''[DEFAULT]
transport_url = rabbit://guest:s3cret@127.0.0.1:5672/
state_path = {_state(tmp_path)}
[libvirt]
connection_uri = test:///{tmp_path}/no-such-host.xml
[placement_database]
connection = sqlite:///{db}
''')
    assert code == 2
    assert report['Message broker']['result'] == 2
    assert 'guest:***@' in report['Message broker']['details']
    assert report['Placement database']['result'] == 2
    conf_file = tmp_path / 'nova-rt.conf'
    assert (f'run nova-rt-manage --config-file {conf_file} db sync'
            in report['Placement database']['details'])
    assert report['Libvirt']['result'] == 2
    # after a db sync the database check passes
    subprocess.run([str(STATUS.with_name('nova-rt-manage')), '--config-file',
                    str(tmp_path / 'nova-rt.conf'), 'db', 'sync'], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    _code, report = _check(tmp_path, (tmp_path / 'nova-rt.conf').read_text())
    assert report['Placement database']['result'] == 0


def _reserving(tmp_path, cpus, memory_mb, disk_mb):
    """A compute host on an 8-CPU, 4096 MB host XML, with these reserved."""
    uri = hostxml.write_host_xml(tmp_path / 'host.xml', n_domains=0, cpus=8,
                                 memory_kib=4096 * 1024)
    return _identity(tmp_path) + f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
reserved_host_cpus = {cpus}
reserved_host_memory_mb = {memory_mb}
reserved_host_disk_mb = {disk_mb}
[libvirt]
connection_uri = {uri}
'''


def test_reserved_amounts_larger_than_the_host_are_a_warning(tmp_path):
    code, report = _check(tmp_path, _reserving(tmp_path, 9, 4097, 10 ** 9))
    check = report['Reserved amounts']
    assert code == 1 and check['result'] == 1, report
    details = check['details']
    assert "reserved_host_cpus = 9 is more than the host's VCPU total of 8 CPUs" \
        in details
    assert ("reserved_host_memory_mb = 4097 is more than the host's MEMORY_MB "
            "total of 4096 MB") in details
    assert f'reserved_host_disk_mb = {10 ** 9} is more than' in details
    # Everything else about this host is fine: only a warning, as the
    # daemon starts with these.
    assert {c['result'] for name, c in report.items()
            if name != 'Reserved amounts'} == {0}


def test_reserved_amounts_up_to_the_host_pass(tmp_path):
    code, report = _check(tmp_path, _reserving(tmp_path, 8, 4096, 0))
    assert code == 0 and report['Reserved amounts']['result'] == 0, report
    code, report = _check(tmp_path, (tmp_path / 'nova-rt.conf').read_text()
                          .replace('reserved_host_cpus = 8',
                                   'reserved_host_cpus = 9'))
    details = report['Reserved amounts']['details']
    assert code == 1 and 'reserved_host_cpus = 9' in details
    assert 'memory' not in details and 'disk' not in details


def test_postgresql_left_without_any_vacuum_is_a_warning(tmp_path):
    # This machine's PostgreSQL may run with autovacuum off or on: the
    # check must say what the server says.
    import psycopg
    from tests.functional.placement import fixtures
    fixtures.require_pg()
    with psycopg.connect(fixtures.PG_ADMIN) as conn:
        autovacuum = conn.execute('SHOW autovacuum').fetchone()[0]
    url = fixtures.fresh_pg_database()
    try:
        body = f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
[libvirt]
connection_uri = test:///default
[placement_database]
connection = {url}
'''
        (tmp_path / 'nova-rt.conf').write_text(body)
        subprocess.run([str(STATUS.with_name('nova-rt-manage')), '--config-file',
                        str(tmp_path / 'nova-rt.conf'), 'db', 'sync'],
                       check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
        _code, report = _check(tmp_path, body + 'vacuum_interval = 0\n')
        check = report['Placement database']
        if autovacuum == 'off':
            assert check['result'] == 1, check
            assert 'vacuum_interval' in check['details']
        else:
            assert check['result'] == 0, check
        # The default interval: placement vacuums itself, nothing to say.
        _code, report = _check(tmp_path, body)
        assert report['Placement database']['result'] == 0
    finally:
        fixtures.drop_pg_database(url)


def _placement_host(tmp_path, placement_database):
    config = _compute_host(tmp_path)
    keys.create_key(str(tmp_path / 'keys'), 'nova-rt-placement')
    return config + f'[placement_database]\n{placement_database}\n'


def test_placement_host_without_its_sqlite_database_fails_and_names_the_fix(tmp_path):
    # The default URL, written out as install.rst asks of a placement host.
    db = tmp_path / 'state' / 'placement.sqlite'
    code, report = _check(tmp_path, _placement_host(
        tmp_path, 'connection = sqlite:///$state_path/placement.sqlite'))
    check = report['Placement database']
    assert code == 2 and check['result'] == 2, check
    assert f'{db} does not exist' in check['details']
    sync = f'nova-rt-manage --config-file {tmp_path / "nova-rt.conf"} db sync'
    assert sync in check['details']
    assert not db.exists()                       # the check created nothing
    argv = sync.split()
    synced = subprocess.run([str(STATUS.with_name(argv[0])), *argv[1:]],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert synced.returncode == 0, synced.stderr
    code, report = _check(tmp_path, (tmp_path / 'nova-rt.conf').read_text())
    assert code == 0 and report['Placement database']['result'] == 0, report


def test_sync_on_startup_is_a_first_start_that_works(tmp_path):
    code, report = _check(tmp_path, _placement_host(tmp_path, 'sync_on_startup = true'))
    check = report['Placement database']
    assert code == 0 and check['result'] == 0, check
    assert 'creates it when it starts' in check['details']
    assert not (tmp_path / 'state' / 'placement.sqlite').exists()


def test_compute_only_host_says_how_it_was_told_apart(tmp_path):
    code, report = _check(tmp_path, _compute_host(tmp_path))
    check = report['Placement database']
    assert code == 0 and check['result'] == 0, check
    assert '[placement_database] is not configured' in check['details']
    assert 'compute-only host' in check['details']


def test_every_command_prints_the_pbr_version():
    from nova_rt import version
    expected = version.version_string()
    assert expected
    for name in ('nova-rt-compute', 'nova-rt-placement', 'nova-rt-manage',
                 'nova-rt-status', 'nova-rt'):
        result = subprocess.run([str(STATUS.with_name(name)), '--version'],
                                stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, (name, result.stderr)
        # The CLI is a cliff application, which prints "PROG VERSION" as
        # openstackclient does; the daemons print oslo.config's bare version.
        shown = f'nova-rt {expected}' if name == 'nova-rt' else expected
        assert result.stdout.strip() == shown, (name, result.stdout)


def test_a_value_over_its_bound_fails_every_check_that_reads_it(tmp_path):
    code, report = _check(tmp_path, f'''[DEFAULT]
transport_url = {RABBIT}
state_path = {_state(tmp_path)}
reserved_host_disk_mb = {2**50}
[libvirt]
connection_uri = test:///default
''')
    assert code == 2
    assert 'reserved_host_disk_mb' in report['Configuration']['details']
    assert report['Reserved amounts']['result'] == 2
    assert 'invalid configuration' in report['Reserved amounts']['details']
