"""osc-placement through the reference virtualenv's ``openstack`` command,
authenticated the way the issue says operators do without Keystone, each
command run by python-openstackclient's own ``main`` in one long-lived process
(``osc_runner.py``)."""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import subprocess
import threading

from tests.functional.clients import server as server_mod

RUNNER = pathlib.Path(__file__).resolve().parent / 'osc_runner.py'


class OscError(AssertionError):
    pass


def command(url: str, version: str, *args) -> list:
    return ['--os-auth-type', 'admin_token', '--os-token', 'admin',
            '--os-endpoint', url, '--os-placement-api-version', version, *args]


class _Runner:
    """One ``osc_runner.py`` process per server and microversion, started
    on first use, that runs the commands against that server at that
    microversion (one at a time).  Not one for the whole session:
    openstackclient keeps the first endpoint and the first placement
    microversion it was given in the process."""

    def __init__(self):
        self._proc = None
        self._key = None
        self._lock = threading.Lock()

    def __call__(self, key: tuple, argv: list) -> dict:
        with self._lock:
            if self._proc is not None and self._key != key:
                self._proc.kill()
                self._proc.wait()
                self._proc = None
            if self._proc is None or self._proc.poll() is not None:
                self._key = key
                self._proc = subprocess.Popen(
                    [server_mod.ref_bin('python'), str(RUNNER)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    text=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
                atexit.register(self._proc.kill)
            self._proc.stdin.write(json.dumps(argv) + '\n')
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise OscError(f'the osc runner exited ({self._proc.poll()}) '
                           f'running openstack {" ".join(argv)}')
        return json.loads(line)


_run = _Runner()


def run(url: str, version: str, *args, expect_ok: bool = True) -> tuple:
    """(returncode, stdout, stderr); raises OscError when expect_ok and it failed."""
    argv = command(url, version, *args)
    result = _run((url, version), argv)
    if expect_ok and result['rc']:
        raise OscError(f'openstack {" ".join(argv[8:])} exited {result["rc"]}:\n'
                       f'{result["stderr"].strip()[-2000:]}')
    return result['rc'], result['stdout'], result['stderr']


def js(url: str, version: str, *args):
    """The command's ``-f json`` output, parsed."""
    return json.loads(run(url, version, *args, '-f', 'json')[1])
