"""The quick start's services: placement and two compute daemons in a temp dir.

``DemoStack`` writes the configuration (its own RabbitMQ vhost when
``rabbitmqctl`` can make one, else a unique ``control_exchange`` on the
default vhost), syncs the SQLite placement database, starts
``nova-rt-placement`` and one ``nova-rt-compute`` per ``HostSpec`` on the
libvirt test driver (under ``umockdev-run`` for a host with a PCI testbed),
waits until each serves, and stops them all again.  Each daemon gets its own
session, so Ctrl-C at the terminal reaches only the demo, which then stops
them in order; ``state.json`` lets ``stop_recorded`` stop a ``--keep-running``
stack later, from another process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Optional

RABBIT = 'rabbit://guest:guest@127.0.0.1:5672/'
STATE_FILE = 'state.json'
#: The principal the quick start's CLI signs as, one of [identity] operators.
OPERATOR = 'admin'


class StackError(Exception):
    """A step of the start-up failed; the message says which and why."""


@dataclasses.dataclass
class HostSpec:
    name: str
    pci_testbed: Optional[str] = None     # a .umockdev file: PCI under umockdev
    pci_sections: str = ''                # [pci] options for that testbed


def host_xml(cpus: int = 16, memory_gib: int = 32, domains: int = 1) -> str:
    """A libvirt test-driver node: room for claims, and ``domains`` running
    guests nobody claimed, which the tracker reports as unmanaged."""
    guests = ''.join(
        f"<domain type='test'><name>legacy-vm-{i}</name>"
        f"<uuid>{uuid.uuid5(uuid.NAMESPACE_URL, f'nova-rt-demo-{i}')}</uuid>"
        f"<memory unit='MiB'>1024</memory><vcpu>1</vcpu>"
        f"<os><type arch='i686'>hvm</type></os></domain>" for i in range(domains))
    return (f"<node><cpu><nodes>1</nodes><sockets>2</sockets>"
            f"<cores>{max(cpus // 4, 1)}</cores><threads>2</threads>"
            f"<active>{cpus}</active><mhz>2000</mhz><model>i686</model></cpu>"
            f"<memory>{memory_gib * 1024 * 1024}</memory>{guests}</node>\n")


def _rabbitmqctl(*args) -> bool:
    try:
        subprocess.run(['rabbitmqctl', *args], check=True, timeout=60,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not running any more.
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        return ''


def stop_pids(pids: list, timeout: float = 30) -> list:
    """SIGTERM each process, wait, then SIGKILL its whole session.

    Returns the pids that had to be killed.  Each pid leads its own process
    group (start_new_session), so the kill also reaches a placement worker
    or the daemon under umockdev-run.
    """
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    killed = []
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        _reap(pid)
        if _alive(pid):
            killed.append(pid)
        try:
            os.killpg(pid, signal.SIGKILL)   # leftovers of the group, if any
        except (ProcessLookupError, PermissionError):
            pass
        _reap(pid)
    return killed


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class DemoStack:
    """``DemoStack(workdir, hosts)``; ``start()``, ``stop()``, ``config_file``."""

    def __init__(self, workdir: str, hosts: list, python: str = sys.executable):
        self.workdir = workdir
        self.hosts = hosts
        self.python = python
        self.tag = uuid.uuid4().hex[:10]
        self.exchange = f'nova_rt_demo_{self.tag}'
        self.vhost: Optional[str] = None
        self.transport_url = RABBIT
        self.config_file = os.path.join(workdir, 'nova-rt.conf')
        self.placement_config = os.path.join(workdir, 'placement.conf')
        self.keys_dir = os.path.join(workdir, 'keys')
        self.procs: dict = {}        # name -> Popen

    # -- configuration -------------------------------------------------------

    def _make_vhost(self) -> None:
        name = f'nova_rt_demo_{self.tag}'
        if _rabbitmqctl('add_vhost', name) and _rabbitmqctl(
                'set_permissions', '-p', name, 'guest', '.*', '.*', '.*'):
            self.vhost = name
            self.transport_url = RABBIT + name

    def host_config(self, host: HostSpec) -> str:
        return os.path.join(self.workdir, f'compute-{host.name}.conf')

    def write_keys(self) -> str:
        """A key pair per principal (``nova-rt-manage identity create-key``
        does the same); the ``[identity]`` section every service shares:
        signatures enforced, ``admin`` the operator the CLI signs as."""
        from nova_rt.identity import keys
        for principal in (*(h.name for h in self.hosts), 'nova-rt-placement',
                          OPERATOR):
            keys.create_key(self.keys_dir, principal)
        return (f'[identity]\nenforce = true\nkeys_dir = {self.keys_dir}\n'
                f'operators = {OPERATOR}\n')

    def write_configs(self) -> None:
        """nova-rt.conf for the CLI (signing as the operator), placement.conf,
        one file per compute host."""
        self._make_vhost()
        identity = self.write_keys()
        common = (f'[DEFAULT]\ntransport_url = {self.transport_url}\n'
                  f'control_exchange = {self.exchange}\n'
                  'rpc_response_timeout = 10\n')
        with open(self.config_file, 'w') as f:
            f.write(common + identity + f'principal = {OPERATOR}\n')
        with open(self.placement_config, 'w') as f:
            f.write(common + f'state_path = {self.workdir}/placement\n'
                    + identity +
                    f'[placement_database]\nconnection = sqlite:///'
                    f'{self.workdir}/placement.sqlite\n')
        for host in self.hosts:
            xml = os.path.join(self.workdir, f'host-{host.name}.xml')
            with open(xml, 'w') as f:
                f.write(host_xml())
            with open(self.host_config(host), 'w') as f:
                f.write(common + f'host = {host.name}\n'
                        f'state_path = {self.workdir}/state-{host.name}\n'
                        'update_resources_interval = 10\nheartbeat_interval = 2\n'
                        'reserved_host_memory_mb = 512\n'
                        f'[libvirt]\nconnection_uri = test://{xml}\n'
                        f'{host.pci_sections}\n' + identity)
        self.save_state()

    def save_state(self) -> None:
        state = {'workdir': self.workdir, 'vhost': self.vhost,
                 'pids': {name: p.pid for name, p in self.procs.items()}}
        with open(os.path.join(self.workdir, STATE_FILE), 'w') as f:
            json.dump(state, f, indent=2)

    # -- processes -----------------------------------------------------------

    def log_path(self, name: str) -> str:
        return os.path.join(self.workdir, f'{name}.log')

    def _spawn(self, name: str, argv: list) -> subprocess.Popen:
        with open(self.log_path(name), 'w') as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir,
                env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
        self.procs[name] = proc
        self.save_state()
        return proc

    def db_sync(self) -> None:
        result = subprocess.run(
            [self.python, '-m', 'nova_rt.cmd.manage', '--config-file',
             self.placement_config, 'db', 'sync'], stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise StackError('nova-rt-manage db sync failed:\n' + result.stderr)

    def start_placement(self) -> None:
        self._spawn('placement', [self.python, '-m', 'nova_rt.cmd.placement',
                                  '--config-file', self.placement_config])

    def start_compute(self, host: HostSpec) -> None:
        argv = [self.python, '-m', 'nova_rt.cmd.compute', '--config-file',
                self.host_config(host)]
        if host.pci_testbed:
            argv = ['umockdev-run', '-d', host.pci_testbed, '--'] + argv
        self._spawn(host.name, argv)

    def wait_for(self, name: str, marker: str, timeout: float = 60) -> float:
        """Seconds until ``marker`` shows in ``name``'s log."""
        started = time.monotonic()
        proc = self.procs[name]
        while time.monotonic() - started < timeout:
            with open(self.log_path(name), errors='replace') as f:
                if marker in f.read():
                    return time.monotonic() - started
            if proc.poll() is not None:
                raise StackError(f'{name} exited with code {proc.returncode}:\n'
                                 + self.log_tail(name))
            time.sleep(0.1)
        raise StackError(f'{name} did not start within {timeout:.0f}s:\n'
                         + self.log_tail(name))

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            with open(self.log_path(name), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def start(self) -> None:
        """Placement first: a compute's first report to a topic nobody
        consumes yet would be lost and only retried after a timeout."""
        self.db_sync()
        self.start_placement()
        self.wait_for('placement', 'serving topic')
        for host in self.hosts:
            self.start_compute(host)
        for host in self.hosts:
            self.wait_for(host.name, 'ready in')

    def pids(self) -> dict:
        return {name: proc.pid for name, proc in self.procs.items()}

    def stop(self) -> list:
        """Computes first (they flush a last report), then placement."""
        order = [h.name for h in self.hosts if h.name in self.procs]
        order += [n for n in self.procs if n not in order]
        killed = stop_pids([self.procs[n].pid for n in order])
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.vhost and _rabbitmqctl('delete_vhost', self.vhost):
            self.vhost = None
        return killed


def stop_recorded(workdir: str, remove: bool = True) -> str:
    """Stop what a ``--keep-running`` demo left in ``workdir``; one line report."""
    path = os.path.join(workdir, STATE_FILE)
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as exc:
        raise StackError(f'no demo state in {workdir}: {exc}') from None
    # Only processes still running with this demo's files: a pid may have
    # been reused since the demo started.
    pids = [pid for pid in state.get('pids', {}).values()
            if _alive(pid) and workdir in _cmdline(pid)]
    killed = stop_pids(pids)
    if state.get('vhost'):
        _rabbitmqctl('delete_vhost', state['vhost'])
    if remove:
        shutil.rmtree(workdir, ignore_errors=True)
    note = f' ({len(killed)} had to be killed)' if killed else ''
    return f'stopped {len(pids)} process(es){note}'
