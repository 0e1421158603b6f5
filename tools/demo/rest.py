"""The quick start's last step: Placement's REST API on the same database,
looked at with osc-placement as an operator would (issue 17).

``nova-rt-placement-api`` (pbr's WSGI script) serves the demo's placement
database with ``[api] auth_strategy = noauth2``; ``openstack resource
provider list`` (osc-placement, in the virtualenv through
test-requirements.txt) must show both demo hosts' providers, which their
nova-rt-compute daemons reported over RPC.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

#: What Nova 34's scheduler and osc-placement speak.
VERSION = '1.39'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'nova-rt-placement-api exited {proc.returncode}')
        try:
            with urllib.request.urlopen(url + '/', timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f'nova-rt-placement-api did not answer on {url}')


def show(stack, hosts: list, say, stack_error) -> None:
    """Start the API on the stack's placement config, list providers with
    osc-placement, check that every host's root provider is listed."""
    bindir = os.path.dirname(sys.executable)
    api_conf = os.path.join(stack.workdir, 'placement-api.conf')
    with open(api_conf, 'w') as f:
        f.write('[api]\n# Development only: the token "admin" is the admin.\n'
                'auth_strategy = noauth2\nbind_host = 127.0.0.1\n')
    port = _free_port()
    url = f'http://127.0.0.1:{port}'
    argv = [os.path.join(bindir, 'nova-rt-placement-api'), '--port', str(port),
            '--', '--config-file', stack.placement_config, '--config-file', api_conf]
    say("# Placement's REST API on the same database (osc-placement, Nova's "
        'report client and other Placement clients use it):')
    say(f'$ nova-rt-placement-api --port {port} -- --config-file '
        f'{stack.placement_config} --config-file {api_conf} &')
    proc = stack._spawn('placement-api', argv)
    try:
        _wait_http(url, proc)
    except RuntimeError as exc:
        raise stack_error(f'{exc}:\n{stack.log_tail("placement-api")}') from None
    osc = [os.path.join(bindir, 'openstack'), '--os-auth-type', 'admin_token',
           '--os-token', 'admin', '--os-endpoint', url,
           '--os-placement-api-version', VERSION, 'resource', 'provider', 'list']
    stack.api_url = url
    say('$ ' + shlex.join(['openstack', *osc[1:]]))
    result = subprocess.run(osc + ['--sort-column', 'name'], capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    say((result.stdout + result.stderr).rstrip('\n'))
    say()
    if result.returncode:
        raise stack_error(f'openstack resource provider list exited '
                          f'{result.returncode}: {result.stderr.strip()[-500:]}')
    listed = subprocess.run(osc + ['-f', 'json'], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    names = {p['name'] for p in json.loads(listed.stdout or '[]')}
    missing = [h for h in hosts if h not in names]
    if missing:
        raise stack_error(f'osc-placement does not list the providers of '
                          f'{", ".join(missing)} (it lists {sorted(names)})')
