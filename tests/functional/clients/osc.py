"""osc-placement through the reference virtualenv's ``openstack`` command,
authenticated the way the issue says operators do without Keystone."""

from __future__ import annotations

import json
import subprocess

from tests.functional.clients import server as server_mod


class OscError(AssertionError):
    pass


def command(url: str, version: str, *args) -> list:
    return [server_mod.ref_bin('openstack'), '--os-auth-type', 'admin_token',
            '--os-token', 'admin', '--os-endpoint', url,
            '--os-placement-api-version', version, *args]


def run(url: str, version: str, *args, expect_ok: bool = True) -> tuple:
    """(returncode, stdout, stderr); raises OscError when expect_ok and it failed."""
    argv = command(url, version, *args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    if expect_ok and result.returncode:
        raise OscError(f'openstack {" ".join(argv[9:])} exited {result.returncode}:\n'
                       f'{result.stderr.strip()[-2000:]}')
    return result.returncode, result.stdout, result.stderr


def js(url: str, version: str, *args):
    """The command's ``-f json`` output, parsed."""
    return json.loads(run(url, version, *args, '-f', 'json')[1])
