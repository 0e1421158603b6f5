"""The quick start's walk through the ``nova-rt`` CLI, printed as a transcript.

Every step is a real ``nova-rt`` command line (run in this process through
``nova_rt.cmd.cli.main``, which is what the console script runs), printed
before its output as a person would type it.  Each step states the exit code
it expects, and ``check`` steps read the JSON view to make sure the result is
right, not just printed: a broken quick start fails, it does not merely look
odd.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import sys
import time
import uuid

from nova_rt.cmd import cli


class TourError(Exception):
    """A step did not do what it should; the message says which."""


class Transcript:
    """Runs CLI command lines against one config file and prints them."""

    def __init__(self, config_file: str, out=None):
        self.config_file = config_file
        self.out = out or sys.stdout
        self.steps = 0

    def _call(self, argv: list) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(['--config-file', self.config_file, *argv])
        return code, stdout.getvalue(), stderr.getvalue()

    def say(self, text: str = '') -> None:
        print(text, file=self.out, flush=True)

    def run(self, argv: list, expect: int = 0, why: str = '') -> str:
        """Print ``$ nova-rt ARGV``, run it, print its output; check the code."""
        self.steps += 1
        if why:
            self.say(f'# {why}')
        self.say(f'$ nova-rt {shlex.join(argv)}')
        code, stdout, stderr = self._call(argv)
        if stdout:
            self.say(stdout.rstrip('\n'))
        if stderr:
            self.say(stderr.rstrip('\n'))
        self.say()
        if code != expect:
            raise TourError(f'"nova-rt {shlex.join(argv)}" exited {code}, '
                            f'expected {expect}: {stderr.strip()}')
        return stdout + stderr

    def data(self, argv: list):
        """The JSON view of a command, not printed (for checks)."""
        code, stdout, stderr = self._call(['-f', 'json', *argv])
        if code:
            raise TourError(f'"nova-rt -f json {shlex.join(argv)}" exited '
                            f'{code}: {stderr.strip()}')
        return json.loads(stdout)


def wait_until_alive(t: Transcript, hosts: list, timeout: float = 30) -> float:
    """Seconds until placement lists every host alive (first heartbeat)."""
    started = time.monotonic()
    while True:
        alive = {h['host'] for h in t.data(['host', 'list']) if h['alive']}
        if set(hosts) <= alive:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TourError(f'hosts not alive in placement after {timeout:.0f}s: '
                            f'{sorted(set(hosts) - alive)}')
        time.sleep(0.3)


def _flavor(vcpus: int, memory_mb: int, root_gb: int, prefix: str = 'flavor') -> list:
    return [f'--{prefix}-vcpus', str(vcpus), f'--{prefix}-memory-mb', str(memory_mb),
            f'--{prefix}-root-gb', str(root_gb)]


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise TourError(f'check failed: {what}')


def run_tour(t: Transcript, host1: str, host2: str, alias: str) -> dict:
    """The walk; returns the uuids it made.  Raises TourError on any surprise."""
    vm_a, vm_b = str(uuid.uuid4()), str(uuid.uuid4())
    resize, move = str(uuid.uuid4()), str(uuid.uuid4())

    t.run(['host', 'list'], why='Hosts placement knows, with their usage')
    t.run(['host', 'show', host2],
          why=f'{host2} as its own daemon sees it: the SR-IOV VFs are a PCI pool')

    t.run(['claim', 'create', '--host', host1, '--instance-uuid', vm_a,
           *_flavor(2, 2048, 10)], why=f'A build claim on {host1}')
    out = t.run(['claim', 'create', '--host', host2, '--instance-uuid', vm_b,
                 *_flavor(4, 4096, 20), '--extra-spec',
                 f'pci_passthrough:alias={alias}:1'],
                why=f'A build claim on {host2} with one VF (PCI alias "{alias}")')
    _check('type-VF' in out, 'the claim on the PCI host holds a VF')
    out = t.run(['claim', 'create', '--host', host1, *_flavor(1, 10 ** 6, 1)],
                expect=1, why='A claim that does not fit is refused, and nothing changes')
    _check('ComputeResourcesUnavailable' in out, 'the refusal names its class')

    t.run(['candidates', '--resources', 'VCPU=4,MEMORY_MB=8192'],
          why='Which live hosts could take 4 VCPU and 8 GiB? (emptiest first)')

    t.run(['migration', 'resize', '--instance', vm_a, '--source', host1,
           '--migration-uuid', resize, *_flavor(2, 2048, 10),
           *_flavor(4, 4096, 10, 'new-flavor')],
          why=f'Resize the first instance on {host1} (same host): both flavors held')
    t.run(['migration', 'finish', '--host', host1, resize])
    t.run(['migration', 'confirm', '--instance', vm_a, '--source', host1, resize],
          why='Confirm: the old flavor is freed')

    t.run(['migration', 'migrate', '--instance', vm_a, '--source', host1,
           '--dest', host2, '--migration-uuid', move, *_flavor(4, 4096, 10)],
          why=f'Cold-migrate it to {host2}: the claim is made on the destination')
    t.run(['migration', 'finish', '--host', host2, move])
    t.run(['migration', 'confirm', '--instance', vm_a, '--source', host1,
           '--dest', host2, '--type', 'migration', move],
          why=f'Confirm at the source: {host1} forgets the instance')

    for host in (host1, host2):
        t.run(['audit', 'run', host],
              why=f'Audit {host} now (and report to placement) instead of waiting')
    t.run(['host', 'show', host1])
    t.run(['host', 'show', host2])
    t.run(['candidates', '--resources', 'VCPU=4,MEMORY_MB=8192'],
          why=f'Candidates again: {host1} is the emptier one now')
    t.run(['host', 'list'])
    t.run(['provider', 'list'])

    state1, state2 = t.data(['host', 'show', host1]), t.data(['host', 'show', host2])
    _check(state1['instances'] == [], f'{host1} tracks no instance at the end')
    _check(sorted(state2['instances']) == sorted([vm_a, vm_b]),
           f'{host2} tracks both instances at the end')
    _check(state1['migrations'] == [] and state2['migrations'] == [],
           'no migration is in progress after both were confirmed')
    _check(state2['vcpus_used'] - state1['vcpus_used'] == 8,
           f'{host2} uses 8 more vCPUs than {host1} (4 + 4)')
    in_use = [d for d in state2['pci_devices'] if d['instance_uuid'] == vm_b]
    _check(len(in_use) == 1, f'one VF of {host2} belongs to the second instance')
    usages = {h['host']: h['usages'] for h in t.data(['host', 'list'])}
    # Placement counts what the daemons count, the test driver's own
    # (unmanaged) domains included.
    _check(all(usages[s['host']].get('VCPU', 0) == s['vcpus_used']
               for s in (state1, state2)),
           'placement has the same usage as the daemons')
    return {'instances': [vm_a, vm_b], 'migrations': [resize, move]}
