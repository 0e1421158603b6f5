"""``nova-rt-status upgrade check`` as an operator runs it."""

import json
import pathlib
import subprocess
import sys

STATUS = pathlib.Path(sys.executable).with_name('nova-rt-status')


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


def test_good_host_passes(tmp_path):
    state = tmp_path / 'state'
    state.mkdir(mode=0o700)
    code, report = _check(tmp_path, f'''[DEFAULT]
transport_url = rabbit://nova:s3cret@mq.example:5672/
state_path = {state}
''')
    assert code == 0, report
    assert {c['result'] for c in report.values()} == {0}


def test_bad_config_fails_with_the_option_named(tmp_path):
    code, report = _check(tmp_path, f'''[DEFAULT]
transport_url = rabbit://nova:s3cret@mq.example:5672/
state_path = {tmp_path}/missing
[compute]
cpu_shared_set = 0-3
cpu_dedicated_set = 3-5
''')
    assert code == 2
    assert report['Configuration']['result'] == 2
    assert 'overlap on CPUs 3' in report['Configuration']['details']


def test_default_transport_and_open_state_dir_are_warnings(tmp_path):
    state = tmp_path / 'state'
    state.mkdir()
    state.chmod(0o755)
    code, report = _check(tmp_path, f'[DEFAULT]\nstate_path = {state}\n')
    assert code == 1
    assert report['Transport URL']['result'] == 1
    assert report['State directory']['result'] == 1
    assert '0755' in report['State directory']['details']

