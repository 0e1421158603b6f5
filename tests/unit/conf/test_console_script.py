"""The real ``nova-rt-compute`` refuses a bad config with one line on stderr."""

import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(sys.executable).with_name('nova-rt-compute')

@pytest.mark.parametrize('body, option', [
    ('cpu_allocation_ratio = 0\n', '[DEFAULT] cpu_allocation_ratio'),
    ('[compute]\ncpu_shared_set = 0-3,^9-x\n', '[compute] cpu_shared_set'),
], ids=['ratio', 'cpuset'])
def test_bad_config_stops_compute_with_one_line(tmp_path, body, option):
    bad = tmp_path / 'bad.conf'
    # A state_path of its own, so that a start that goes too far touches
    # nothing outside the test.
    bad.write_text(f'[DEFAULT]\nstate_path = {tmp_path}\n' + body)
    result = subprocess.run(
        [str(SCRIPT), '--config-file', str(bad)], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert option in lines[0]
    assert 'Traceback' not in result.stderr
