"""devstack's start step creates placement's schema before starting it.

devstack itself cannot be had here: its few functions that start_nova_rt
calls are stand-ins that record what they were asked; nova-rt-manage and the
database are real.
"""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent

DEVSTACK = '''
function is_service_enabled { [[ " $ENABLED " == *" $1 "* ]]; }
function get_python_exec_prefix { echo "$BIN"; }
# Records whether the schema was there when each service started.
function run_process {
    echo "$1 $([[ -f $DATABASE ]] && echo with || echo without) database" >> "$RECORD"
}
'''


def _start(tmp_path, enabled):
    state = tmp_path / 'state'
    state.mkdir(mode=0o700)
    conf = tmp_path / 'nova-rt.conf'
    conf.write_text(f'[DEFAULT]\nstate_path = {state}\n')
    record = tmp_path / 'record'
    database = state / 'placement.sqlite'
    script = (DEVSTACK + f'source {REPO}/devstack/plugin.sh\n'
              'start_nova_rt\n')
    result = subprocess.run(
        ['bash', '-c', script],
        env={'PATH': f'{BIN}:/usr/bin:/bin', 'BIN': str(BIN), 'ENABLED': enabled,
             'NOVA_RT_CONF': str(conf), 'RECORD': str(record),
             'DATABASE': str(database)},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return database, record.read_text().splitlines()


def test_start_syncs_the_schema_then_starts_placement(tmp_path):
    database, started = _start(tmp_path, 'nova-rt-placement nova-rt-compute')
    assert started == ['nova-rt-placement with database',
                       'nova-rt-compute with database']
    version = subprocess.run(
        [str(BIN / 'nova-rt-manage'), '--config-file', str(tmp_path / 'nova-rt.conf'),
         'db', 'version'], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert database.exists()
    assert version.returncode == 0, version.stderr
    from nova_rt.placement import db
    assert db.head() in version.stdout


def test_compute_only_host_makes_no_placement_database(tmp_path):
    database, started = _start(tmp_path, 'nova-rt-compute')
    assert not database.exists()
    assert started == ['nova-rt-placement without database',
                       'nova-rt-compute without database']
