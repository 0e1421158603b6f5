"""``openstack rt ...``: the same commands through python-openstackclient.

No Keystone: the commands say ``auth_required = False``, so osc asks for no
credentials, and nova_rt's own config file gives the RPC settings.
"""

import json
import os
import subprocess
import sys
import uuid

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')


def _openstack(*argv, env=None):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(('OS_', 'NOVA_RT_'))}
    return subprocess.run([OPENSTACK, *argv], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_openstack_rt_host_list_without_keystone(cli_stack):
    result = _openstack('rt', 'host', 'list', '-f', 'json',
                        env={'NOVA_RT_CONFIG_FILE': cli_stack.config_file})
    assert result.returncode == 0, result.stderr
    hosts = json.loads(result.stdout)
    assert cli_stack.host in [h['host'] for h in hosts if h['alive']]
    result = _openstack('--os-rt-config-file', cli_stack.config_file,
                        'rt', 'host', 'show', cli_stack.host,
                        '-f', 'value', '-c', 'vcpus')
    assert (result.returncode, result.stdout) == (0, '8\n'), result.stderr


def test_openstack_rt_errors_keep_the_cli_contract(cli_stack):
    result = _openstack('--os-rt-config-file', cli_stack.config_file,
                        'rt', 'provider', 'show', str(uuid.uuid4()))
    assert result.returncode == 1
    assert result.stderr.startswith('ERROR: ResourceProviderNotFound: ')
    assert result.stderr.count('\n') == 1
    result = _openstack('rt', 'host', 'list',
                        '--os-rt-transport-url', 'rabbit://guest:s3cr3t@127.0.0.1:1/')
    assert result.returncode == 1
    notice, error = result.stderr.splitlines()[-2:]
    assert notice.startswith('openstack rt: no config file found (looked for '
                             '--os-rt-config-file, $NOVA_RT_CONFIG_FILE (unset)')
    assert error.startswith('ERROR: cannot use the message bus at '
                            'rabbit://guest:***@127.0.0.1:1/')
    assert 's3cr3t' not in result.stderr
