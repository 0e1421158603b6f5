"""``python -m tools.demo``, from the repository's root: nova_rt at work on
this machine.

Run by ``tools/quickstart.sh`` (the README's first command), which passes its
arguments through.  It lives outside the nova_rt package, which it only
drives: the installed services and the ``nova-rt`` CLI.  Subcommands:

``run`` (the default)
    starts ``nova-rt-placement`` (SQLite) and two ``nova-rt-compute`` daemons
    on libvirt's test driver, the second with an SR-IOV NIC under umockdev,
    then walks through the ``nova-rt`` CLI: hosts, claims (one with a VF), a
    refused claim, a resize, a cold migration, candidates, providers; last,
    ``nova-rt-placement-api`` on the same database and ``openstack resource
    provider list`` (osc-placement) against it.  It
    stops everything at the end unless ``--keep-running``; by default it
    waits for Enter first when run from a terminal, ``--exit-after-show``
    (``--ci``) does not wait.  Exits non-zero if any step fails.
``stop WORKDIR``
    stops what ``run --keep-running`` left running and removes its files.
``inventory``
    the host inventory as nova-rt-compute reads it (issue 2), as JSON and a
    table (``tools/demo/inventory.py``).

Example::

    $ python -m tools.demo --ci
    $ python -m tools.demo inventory --uri test:///default --format table
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Optional

from nova_rt import exception
from tools.demo import inventory
from tools.demo import rest
from tools.demo import stack as stack_mod


# --- inventory -------------------------------------------------------------

def cmd_inventory(args) -> int:
    try:
        report = inventory.run_inventory(args)
    except (exception.ConfigError, exception.HypervisorUnavailable) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    if args.format in ('both', 'json'):
        print(json.dumps(report, indent=2, sort_keys=True))
    if args.format == 'both':
        print()
    if args.format in ('both', 'table'):
        print(inventory.inventory_table(report))
    return 0


# --- the system demo (placement + two computes + the CLI) -----------------

HOST1, HOST2 = 'demo-host-1', 'demo-host-2'
PCI_ALIAS = 'nic'
#: The 82599's VFs (10ed) of the testbed; its PF (10fb) stays with the host.
PCI_SPEC_JSON = '{"vendor_id": "8086", "product_id": "10ed"}'
PCI_SECTIONS = (
    '[pci]\n'
    f'device_spec = {PCI_SPEC_JSON}\n'
    f'alias = {{"name": "{PCI_ALIAS}", "vendor_id": "8086", '
    '"product_id": "10ed", "device_type": "type-VF"}\n')
REPO = pathlib.Path(__file__).resolve().parents[2]
#: An 82599 with 8 VFs behind its root port, made with
#: tests/fixtures/pci/records.py's sriov_pf (PF1 of the functional tests'
#: host); the demo carries its own so that it reads nothing from tests/.
TESTBED = pathlib.Path(__file__).resolve().parent / 'sriov-nic.umockdev'


def _pci_testbed() -> str:
    if shutil.which('umockdev-run') is None:
        raise stack_mod.StackError('umockdev-run is not installed (tools/setup.sh '
                                   'installs it from bindep.txt)')
    if not TESTBED.exists():
        raise stack_mod.StackError(f'PCI testbed {TESTBED} not found')
    return str(TESTBED)


def _say(text: str = '') -> None:
    print(text, flush=True)


def _start(stack, testbed: str) -> float:
    started = time.monotonic()
    config = stack.placement_config
    where = (f'vhost {stack.vhost}' if stack.vhost else 'the default vhost')
    _say(f'# Services on RabbitMQ ({where}, exchange {stack.exchange}); '
         f'files in {stack.workdir}')
    _say(f'# Every message is signed ([identity] enforce = true): a key pair '
         f'per principal in {stack.keys_dir}, made as')
    for principal in (*(h.name for h in stack.hosts), 'nova-rt-placement',
                      stack_mod.OPERATOR):
        _say(f'$ nova-rt-manage --config-file {config} identity create-key '
             f'{principal}')
    _say(f'# The CLI signs as {stack_mod.OPERATOR}, one of [identity] '
         'operators; each compute host as itself.')
    _say(f'$ nova-rt-manage --config-file {config} db sync')
    stack.db_sync()
    _say(f'$ nova-rt-placement --config-file {config} &')
    stack.start_placement()
    stack.wait_for('placement', 'serving topic')
    for host in stack.hosts:
        prefix = f'umockdev-run -d {testbed} -- ' if host.pci_testbed else ''
        _say(f'$ {prefix}nova-rt-compute --config-file {stack.host_config(host)} &')
        stack.start_compute(host)
    for host in stack.hosts:
        stack.wait_for(host.name, 'ready in')
    elapsed = time.monotonic() - started
    _say(f'# placement and {len(stack.hosts)} compute daemons serve '
         f'({elapsed:.1f}s)\n')
    return elapsed


def _show_pci(testbed: str) -> None:
    """The PCI bus of this machine (real udev), then the demo's SR-IOV tree."""
    from nova_rt.pci import report as pci_report
    from nova_rt.pci import udev
    _say('# The PCI bus of this machine, read through udev:')
    _say('$ python -m nova_rt.pci')
    try:
        _say(pci_report.summary(udev.discover()))
    except Exception as exc:   # a machine without udev still runs the demo
        _say(f'(udev could not be read here: {exc})')
    _say()
    _say(f'# The SR-IOV tree {HOST2} will see (umockdev fixture):')
    command = ['umockdev-run', '-d', testbed, '--', sys.executable, '-m',
               'nova_rt.pci', '--device-spec', PCI_SPEC_JSON]
    _say(f'$ umockdev-run -d {testbed} -- python -m nova_rt.pci '
         f"--device-spec '{PCI_SPEC_JSON}'")
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=60, cwd=str(REPO))
    if result.returncode != 0:
        raise stack_mod.StackError(
            f'listing the fixture PCI tree failed: {result.stderr.strip()}')
    _say(result.stdout.rstrip())
    _say()


def _keep_running_note(stack) -> None:
    _say('Left running (--keep-running):')
    for name, pid in stack.pids().items():
        _say(f'  {name:<12} pid {pid}   log {stack.log_path(name)}')
    _say(f'Try:  NOVA_RT_CONFIG_FILE={stack.config_file} .venv/bin/nova-rt host list')
    if getattr(stack, 'api_url', None):
        _say('      .venv/bin/openstack --os-auth-type admin_token --os-token admin '
             f'--os-endpoint {stack.api_url} --os-placement-api-version '
             f'{rest.VERSION} resource provider list')
    _say(f'Stop: tools/quickstart.sh stop {stack.workdir}')
    _say(f'  (or: {sys.executable} -m tools.demo stop {stack.workdir})')


def _interrupt(signum, _frame):
    # Only the first signal interrupts: a second one (``timeout`` forwards
    # the SIGTERM it got, say) must not cut the clean-up short.
    for other in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def cmd_run(args) -> int:
    from tools.demo import tour
    # SIGTERM or a closed terminal stop the demo like ^C: its daemons too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    began = time.monotonic()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix='nova-rt-demo-'))
    try:
        testbed = _pci_testbed()
    except stack_mod.StackError as exc:
        print(f'demo: {exc}', file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    stack = stack_mod.DemoStack(workdir, [
        stack_mod.HostSpec(HOST1),
        stack_mod.HostSpec(HOST2, pci_testbed=testbed, pci_sections=PCI_SECTIONS)])
    failure = None
    try:
        _show_pci(testbed)
        stack.write_configs()
        _start(stack, testbed)
        transcript = tour.Transcript(stack.config_file)
        tour.wait_until_alive(transcript, [HOST1, HOST2])
        _say(f'# The CLI reads the transport from the config file:\n'
             f'$ export NOVA_RT_CONFIG_FILE={stack.config_file}\n')
        tour.run_tour(transcript, HOST1, HOST2, PCI_ALIAS)
        rest.show(stack, [HOST1, HOST2], _say, stack_mod.StackError)
        _say(f'# All {transcript.steps} steps did what they should '
             f'({time.monotonic() - began:.1f}s).')
    except (stack_mod.StackError, tour.TourError) as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        failure = 'interrupted'
    except Exception as exc:    # a closed stdout, say: never leave daemons behind
        failure = f'{type(exc).__name__}: {exc}'
    if failure is None and args.keep_running:
        _keep_running_note(stack)
        return 0
    if failure is None and not args.exit_after_show and sys.stdin.isatty():
        _say(f'The services are still up: in another terminal try\n'
             f'  NOVA_RT_CONFIG_FILE={stack.config_file} .venv/bin/nova-rt host list')
        try:
            input('Press Enter to stop them. ')
        except (EOFError, KeyboardInterrupt):
            pass
    if failure is not None:
        print(f'demo: FAILED: {failure}', file=sys.stderr)
        for name in stack.pids():
            print(f'--- last lines of {stack.log_path(name)}:\n'
                  f'{stack.log_tail(name)}', file=sys.stderr)
    # Stopping is bounded (SIGTERM, then SIGKILL): let nothing cut it short.
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    killed = stack.stop()
    if killed:
        _say(f'# {len(killed)} process(es) did not stop on SIGTERM and were killed')
    if failure is None:
        shutil.rmtree(workdir, ignore_errors=True)
        _say('# Stopped placement, its REST API and both compute daemons; nothing is '
             'left running.')
        return 0
    print(f'demo: logs kept in {workdir}', file=sys.stderr)
    return 1


def cmd_stop(args) -> int:
    try:
        print(f'demo: {stack_mod.stop_recorded(os.path.realpath(args.workdir))}')
    except stack_mod.StackError as exc:
        print(f'demo: {exc}', file=sys.stderr)
        return 1
    return 0


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--keep-running', action='store_true',
                        help='leave the services running and say how to stop them')
    parser.add_argument('--exit-after-show', '--ci', dest='exit_after_show',
                        action='store_true',
                        help='stop and exit right after the walk-through (CI)')


def _stop_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('workdir', metavar='WORKDIR',
                        help='the directory a --keep-running demo printed')


#: name -> (help, add arguments, handler)
COMMANDS = {
    'run': ('placement + two compute daemons + the nova-rt CLI (default)',
            _run_args, cmd_run),
    'stop': ('stop what "run --keep-running" left running', _stop_args, cmd_stop),
    'inventory': ('the host inventory as nova-rt-compute reads it',
                  inventory.add_arguments, cmd_inventory),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m tools.demo', description='Show nova_rt at work on this machine.')
    parser.add_argument('--format', choices=('both', 'json', 'table'), default='both',
                        help='inventory output: JSON, a table, or both (default)')
    subparsers = parser.add_subparsers(dest='command')
    for name, (help_text, add_args, _handler) in COMMANDS.items():
        add_args(subparsers.add_parser(name, help=help_text))
    return parser


def main(argv: Optional[list] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in COMMANDS for arg in argv) and not {'-h', '--help'} & set(argv):
        # tools/quickstart.sh passes its arguments: "--keep-running" means "run".
        argv = ['run'] + argv
    args = parser.parse_args(argv)
    return COMMANDS[args.command][2](args)


if __name__ == '__main__':
    sys.exit(main())
