"""The quick start end to end: run --keep-running, use it, stop it.

tools/run-tests.sh also runs ``python -m tools.demo --ci`` (the plain
run-and-stop path); this test covers what that cannot: that the services left
running really serve, that ``stop`` ends them all and cleans up, and that the
demo needs nothing but its own directory.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tools.demo import stack

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def demo_run():
    if shutil.which('umockdev-run') is None:
        pytest.skip('umockdev is not installed')
    started = []
    yield started
    for pid in started:          # only if the test failed before "stop"
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_keep_running_then_stop(demo_run, tmp_path):
    # From a copy of tools/demo alone: the demo reads nothing else of the
    # repository (tests/ in particular) when it runs.
    shutil.copytree(REPO / 'tools' / 'demo', tmp_path / 'tools' / 'demo',
                    ignore=shutil.ignore_patterns('__pycache__'))
    result = subprocess.run(
        [sys.executable, '-m', 'tools.demo', '--keep-running'], cwd=tmp_path,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    pids = {name: int(pid) for name, pid in
            re.findall(r'^  (\S+) +pid (\d+)', result.stdout, re.M)}
    demo_run.extend(pids.values())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'All 19 steps did what they should' in result.stdout
    assert set(pids) == {'placement', 'placement-api', 'demo-host-1',
                         'demo-host-2'}
    assert all(stack._alive(pid) for pid in pids.values())
    workdir = re.search(r'^Stop: tools/quickstart.sh stop (\S+)$', result.stdout,
                        re.M).group(1)
    config = os.path.join(workdir, 'nova-rt.conf')
    assert f'NOVA_RT_CONFIG_FILE={config}' in result.stdout

    # What the note tells the operator to try works.
    listed = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'nova-rt'), '-f', 'json',
         'host', 'list'], env={**os.environ, 'NOVA_RT_CONFIG_FILE': config},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert listed.returncode == 0, listed.stderr
    assert {h['host'] for h in json.loads(listed.stdout) if h['alive']} == {
        'demo-host-1', 'demo-host-2'}
    osc_line = re.search(r'^ +(\.venv/bin/openstack .*)$', result.stdout,
                         re.M).group(1).split()
    osc_line[0] = os.path.join(os.path.dirname(sys.executable), 'openstack')
    providers = subprocess.run(
        osc_line + ['-f', 'json'], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL)
    assert providers.returncode == 0, providers.stderr
    assert {'demo-host-1', 'demo-host-2'} <= {
        p['name'] for p in json.loads(providers.stdout)}

    stopped = subprocess.run(
        [sys.executable, '-m', 'tools.demo', 'stop', workdir], cwd=tmp_path,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert stopped.returncode == 0, stopped.stderr
    assert 'stopped 4 process(es)' in stopped.stdout
    assert 'killed' not in stopped.stdout          # SIGTERM was enough
    assert not any(stack._alive(pid) for pid in pids.values())
    assert not os.path.exists(workdir)

    again = subprocess.run(
        [sys.executable, '-m', 'tools.demo', 'stop', workdir], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert again.returncode == 1 and 'no demo state in' in again.stderr
