"""nova-rt against a real nova-rt-placement and nova-rt-compute on RabbitMQ."""

import json
import os
import re
import subprocess
import sys
import time
import uuid

import yaml

BAR = r'\[[#.]{10}\]!? \d+/\d+'


def _flavor(vcpus=1, memory_mb=512, root_gb=1):
    return ['--flavor-vcpus', str(vcpus), '--flavor-memory-mb', str(memory_mb),
            '--flavor-root-gb', str(root_gb)]


def _json(nova_rt, *argv):
    code, out, err = nova_rt('-f', 'json', *argv)
    assert code == 0, err
    return json.loads(out)


def test_host_list_in_every_format(nova_rt, cli_stack):
    code, out, err = nova_rt('host', 'list')
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert [c.strip() for c in lines[1].split('|')[1:-1]] == [
        'host', 'alive', 'heartbeat_age_s', 'usages']
    at = next(i for i, line in enumerate(lines) if f'| {cli_stack.host} ' in line)
    assert '| yes ' in lines[at]
    usages = [line.split('|')[4] for line in lines[at:at + 3]]
    assert [u.split()[0] for u in usages] == ['VCPU', 'MEMORY_MB', 'DISK_GB']
    assert all(re.search(BAR, u) for u in usages)
    hosts = _json(nova_rt, 'host', 'list')
    mine = next(h for h in hosts if h['host'] == cli_stack.host)
    assert mine['alive'] is True
    assert mine['capacity']['VCPU'] == 32        # 8 CPUs x 4.0
    code, out, _ = nova_rt('host', 'list', '-f', 'yaml')
    assert code == 0
    listed = yaml.safe_load(out)
    assert [h['host'] for h in listed] == [h['host'] for h in hosts]
    assert next(h for h in listed if h['host'] == cli_stack.host)['alive'] is True
    # After the command, -f wins over the one before it.
    code, out, _ = nova_rt('-f', 'json', 'host', 'list', '-f', 'yaml')
    assert not out.startswith('[')
    assert [h['host'] for h in yaml.safe_load(out)] == [h['host'] for h in hosts]


def test_value_csv_and_columns_as_in_openstackclient(nova_rt, cli_stack):
    code, out, err = nova_rt('host', 'list', '-f', 'value', '-c', 'host',
                             '-c', 'alive')
    assert (code, err) == (0, '')
    assert f'{cli_stack.host} True' in out.splitlines()
    code, out, _ = nova_rt('host', 'list', '-f', 'csv', '-c', 'host', '-c', 'uuid')
    rows = out.splitlines()
    assert rows[0] == '"host","uuid"'
    uuid_of = dict(line.replace('"', '').split(',') for line in rows[1:])
    rps = _json(nova_rt, 'provider', 'list', '--host', cli_stack.host)
    assert uuid_of[cli_stack.host] == rps[0]['uuid']
    # -c picks from the whole document, and narrows json too.
    assert _json(nova_rt, 'host', 'show', cli_stack.host, '-c', 'vcpus',
                 '-c', 'host') == {'vcpus': 8, 'host': cli_stack.host}
    code, out, err = nova_rt('host', 'list', '-c', 'nope')
    assert code == 2 and "-c/--column: no column 'nope'" in err


def test_long_and_max_width(nova_rt, cli_stack):
    code, out, _ = nova_rt('provider', 'list', '--long')
    assert code == 0 and 'root_uuid' in out.splitlines()[1]
    assert max(len(line) for line in out.splitlines()) > 150
    code, out, _ = nova_rt('provider', 'list', '--long', '--max-width', '120')
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 120, out
    assert 'root_uuid' not in nova_rt('provider', 'list')[1]


def test_host_show_table_and_json(nova_rt, cli_stack):
    code, out, err = nova_rt('host', 'show', cli_stack.host)
    assert (code, err) == (0, '')
    assert re.search(r'\| vcpus_used +\| \[[#.]{10}\] 0/8  \(x4 allocation ratio\)',
                     out)
    assert re.search(r'\| memory_mb_used +\| \[#\.{9}\] 512/65536', out)  # reserved
    assert re.search(r'\| pci_pools +\| - +\|', out)
    state = _json(nova_rt, 'host', 'show', cli_stack.host)
    assert state['host'] == cli_stack.host
    assert state['vcpus'] == 8


def test_claim_create_shows_on_the_host_and_abort_frees_it(nova_rt, cli_stack):
    vm = str(uuid.uuid4())
    claim = _json(nova_rt, 'claim', 'create', '--host', cli_stack.host,
                  '--instance-uuid', vm, *_flavor(2, 1024, 5))
    assert claim['instance_uuid'] == vm
    assert claim['resources'] == {'VCPU': 2, 'MEMORY_MB': 1024, 'DISK_GB': 5}
    state = _json(nova_rt, 'host', 'show', cli_stack.host)
    assert vm in state['instances'] and state['vcpus_used'] == 2
    summary = _json(nova_rt, 'audit', 'run', cli_stack.host)
    assert summary['instances'] == 1
    hosts = _json(nova_rt, 'host', 'list')
    assert next(h for h in hosts if h['host'] == cli_stack.host)['usages']['VCPU'] == 2

    code, out, err = nova_rt('claim', 'abort', '--host', cli_stack.host, vm,
                             '-f', 'value', '-c', 'message')
    assert (code, err) == (0, '')
    assert out.strip() == f'Claim of instance {vm} on {cli_stack.host} aborted.'
    assert vm not in _json(nova_rt, 'host', 'show', cli_stack.host)['instances']


def test_refused_claim_is_one_line_exit_1_and_changes_nothing(nova_rt, cli_stack):
    before = _json(nova_rt, 'host', 'show', cli_stack.host)
    code, out, err = nova_rt('claim', 'create', '--host', cli_stack.host,
                             *_flavor(1, 10 ** 7))
    assert code == 1 and out == ''
    assert err.count('\n') == 1
    assert err.startswith('ERROR: ComputeResourcesUnavailable: ')
    assert 'MEMORY_MB' in err and 'Traceback' not in err
    after = _json(nova_rt, 'host', 'show', cli_stack.host)
    assert after['instances'] == before['instances']
    assert after['memory_mb_used'] == before['memory_mb_used']


def test_same_instance_with_another_flavor_is_a_claim_conflict(nova_rt, cli_stack):
    vm = str(uuid.uuid4())
    args = ['claim', 'create', '--host', cli_stack.host, '--instance-uuid', vm]
    assert nova_rt(*args, *_flavor(1, 256))[0] == 0
    assert nova_rt(*args, *_flavor(1, 256))[0] == 0           # a retry: same claim
    code, _out, err = nova_rt(*args, *_flavor(2, 256))
    assert code == 1 and err.startswith('ERROR: ClaimConflict: ')
    assert nova_rt('claim', 'abort', '--host', cli_stack.host, vm)[0] == 0


def test_a_host_nobody_serves_answers_at_once(nova_rt):
    started = time.monotonic()
    code, out, err = nova_rt('host', 'show', 'no-such-host')
    assert time.monotonic() - started < 5          # not the 10 s RPC timeout
    assert code == 1 and out == ''
    assert err.startswith('ERROR: no nova-rt-compute is serving host no-such-host')


def test_resize_finish_confirm_on_the_same_host(nova_rt, cli_stack):
    host, vm, mig = cli_stack.host, str(uuid.uuid4()), str(uuid.uuid4())
    assert nova_rt('claim', 'create', '--host', host, '--instance-uuid', vm,
                   *_flavor(1, 512))[0] == 0
    moved = _json(nova_rt, 'migration', 'resize', '--instance', vm, '--source', host,
                  '--migration-uuid', mig, *_flavor(1, 512),
                  '--new-flavor-vcpus', '2', '--new-flavor-memory-mb', '1024')
    assert moved['migration']['migration_type'] == 'resize'
    assert moved['claim']['resources']['VCPU'] == 2
    state = _json(nova_rt, 'host', 'show', host)
    assert mig in state['migrations'] and state['vcpus_used'] == 3   # both held
    assert nova_rt('migration', 'finish', '--host', host, mig)[0] == 0
    code, out, err = nova_rt('migration', 'confirm', '--instance', vm,
                             '--source', host, mig)
    assert (code, err) == (0, '')
    assert 'confirmed' in out
    state = _json(nova_rt, 'host', 'show', host)
    assert mig not in state['migrations'] and state['vcpus_used'] == 2
    assert nova_rt('claim', 'abort', '--host', host, vm)[0] == 0


def test_revert_and_abort_free_the_move_claim(nova_rt, cli_stack):
    host, vm = cli_stack.host, str(uuid.uuid4())
    assert nova_rt('claim', 'create', '--host', host, '--instance-uuid', vm,
                   *_flavor(1, 512))[0] == 0
    for action in ('revert', 'abort'):
        mig = str(uuid.uuid4())
        assert nova_rt('migration', 'resize', '--instance', vm, '--source', host,
                       '--migration-uuid', mig, *_flavor(1, 512),
                       '--new-flavor-vcpus', '3', '--new-flavor-memory-mb', '512')[0] == 0
        assert _json(nova_rt, 'host', 'show', host)['vcpus_used'] == 4
        code, out, err = nova_rt('migration', action, '--host', host, mig)
        assert (code, err) == (0, ''), action
        assert _json(nova_rt, 'host', 'show', host)['vcpus_used'] == 1, action
    code, _out, err = nova_rt('migration', 'finish', '--host', host, str(uuid.uuid4()))
    assert code == 1 and err.startswith('ERROR: MigrationNotFound: ')
    assert nova_rt('claim', 'abort', '--host', host, vm)[0] == 0


def test_candidates(nova_rt, cli_stack):
    cands = _json(nova_rt, 'candidates', '--resource', 'VCPU=2',
                  '--resource', 'MEMORY_MB=2048')
    mine = next(c for c in cands if c['host'] == cli_stack.host)
    assert list(mine['allocation'].values()) == [{'VCPU': 2, 'MEMORY_MB': 2048}]
    # The deprecated comma list still asks the same.
    old = _json(nova_rt, 'candidates', '--resources', 'VCPU=2,MEMORY_MB=2048')
    assert [(c['host'], c['allocation']) for c in old] == [
        (c['host'], c['allocation']) for c in cands]
    code, out, _ = nova_rt('candidates', '--resource', 'VCPU=2',
                           '--required', 'CUSTOM_NOBODY_HAS_THIS')
    assert code == 0
    assert out.strip() == 'No allocation candidates: no live host can take that.'
    assert _json(nova_rt, 'candidates', '--resource', 'VCPU=2',
                 '--required', 'CUSTOM_NOBODY_HAS_THIS') == []
    assert len(_json(nova_rt, 'candidates', '--resource', 'VCPU=1',
                     '--limit', '1')) == 1


def test_provider_list_and_show(nova_rt, cli_stack):
    rps = _json(nova_rt, 'provider', 'list', '--host', cli_stack.host)
    assert [rp['name'] for rp in rps] == [cli_stack.host]
    code, out, _ = nova_rt('-f', 'yaml', 'provider', 'show', rps[0]['uuid'])
    assert code == 0
    rp = yaml.safe_load(out)
    assert rp['inventories']['VCPU']['capacity'] == 32
    code, out, _ = nova_rt('provider', 'show', rps[0]['uuid'])
    assert re.search(r'\| inventories +\| VCPU: total 8, reserved 0, ratio 4\.0, ', out)
    code, out, err = nova_rt('provider', 'show', str(uuid.uuid4()))
    assert code == 1 and err.startswith('ERROR: ResourceProviderNotFound: ')


def test_nothing_serving_placement_on_that_exchange(nova_rt, cli_stack, tmp_path):
    config = tmp_path / 'other.conf'
    config.write_text(f'[DEFAULT]\ntransport_url = '
                      f'{cli_stack.stack.placement.transport_url}\n'
                      f'control_exchange = nobody_{uuid.uuid4().hex[:8]}\n')
    code, _out, err = nova_rt('provider', 'list', config_file=str(config))
    assert code == 1
    assert err.startswith('ERROR: no nova-rt-placement is serving (exchange nobody_')


def test_unreachable_broker_is_one_line_without_the_password(nova_rt):
    code, out, err = nova_rt('--transport-url', 'rabbit://guest:s3cr3t@127.0.0.1:1/',
                             'host', 'list')
    assert code == 1 and out == ''
    assert err.startswith('ERROR: cannot use the message bus at '
                          'rabbit://guest:***@127.0.0.1:1/')
    assert 's3cr3t' not in err


def test_the_console_script(cli_stack):
    script = os.path.join(os.path.dirname(sys.executable), 'nova-rt')
    result = subprocess.run(
        [script, '--config-file', cli_stack.config_file, 'host', 'list', '-f', 'json'],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert cli_stack.host in [h['host'] for h in json.loads(result.stdout)]
    assert result.stderr == ''
    result = subprocess.run(
        [script, '--config-file', cli_stack.config_file, 'claim', 'abort',
         '--host', cli_stack.host, 'xyz'],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "'xyz' is not a UUID" in result.stderr
