"""The systemd units in etc/systemd are valid and keep the hardening we promise."""

import configparser
import os
import pathlib
import re
import shutil
import subprocess

import pytest

UNITS = pathlib.Path(__file__).resolve().parents[2] / 'etc' / 'systemd'
NAMES = ('nova-rt-compute', 'nova-rt-placement')

COMMON = {
    'Service': {
        'Type': 'notify', 'NotifyAccess': 'main', 'Restart': 'on-failure',
        'User': 'nova-rt', 'StateDirectory': 'nova_rt',
        'StateDirectoryMode': '0700', 'LogsDirectory': 'nova_rt',
        'NoNewPrivileges': 'yes', 'ProtectSystem': 'strict',
        'ProtectHome': 'yes', 'PrivateTmp': 'yes',
        'ReadWritePaths': '/var/lib/nova_rt',
        'ExecReload': '/bin/kill -HUP $MAINPID',
        'UMask': '0077', 'CapabilityBoundingSet': '', 'PrivateDevices': 'yes',
        'MemoryDenyWriteExecute': 'yes', 'SystemCallArchitectures': 'native',
        'RestrictNamespaces': 'yes', 'ProtectKernelTunables': 'yes',
    },
}
#: The most ``systemd-analyze security`` may rate a unit (0 safe .. 10 exposed).
MAX_EXPOSURE = 2.0


def _unit(name):
    # strict=False: systemd lets a key repeat (SystemCallFilter= adds up).
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str       # systemd keys are case-sensitive
    parser.read_string((UNITS / f'{name}.service').read_text())
    return parser


@pytest.mark.parametrize('name', NAMES)
def test_required_keys(name):
    unit = _unit(name)
    for section, keys in COMMON.items():
        for key, value in keys.items():
            assert unit[section].get(key) == value, (name, key)
    assert unit['Service']['ExecStart'] == (
        f'/usr/bin/{name} --config-file /etc/nova_rt/nova-rt.conf')
    assert int(unit['Service']['WatchdogSec']) > 0
    assert unit['Install']['WantedBy'] == 'multi-user.target'


def test_compute_needs_libvirt():
    service, ordering = _unit('nova-rt-compute')['Service'], _unit('nova-rt-compute')['Unit']
    assert 'libvirtd.service' in ordering['After'].split()
    assert 'libvirtd.service' in ordering['Wants'].split()
    assert service['SupplementaryGroups'] == 'libvirt'


@pytest.mark.skipif(shutil.which('systemd-analyze') is None,
                    reason='systemd-analyze is not installed (bindep: systemd)')
def test_systemd_analyze_verify(tmp_path):
    # verify insists that ExecStart exists: point it at stand-ins, the rest of
    # each unit is checked as written.
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    units = []
    for name in NAMES:
        stand_in = bindir / name
        stand_in.write_text('#!/bin/sh\n')
        stand_in.chmod(0o755)
        unit = tmp_path / f'{name}.service'
        unit.write_text((UNITS / f'{name}.service').read_text().replace(
            f'/usr/bin/{name}', str(stand_in)))
        units.append(str(unit))
    result = subprocess.run(['systemd-analyze', 'verify', *units],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == '', result.stderr


@pytest.mark.skipif(shutil.which('systemd-analyze') is None,
                    reason='systemd-analyze is not installed (bindep: systemd)')
@pytest.mark.parametrize('name', NAMES)
def test_systemd_analyze_security_rates_each_unit_ok(name):
    result = subprocess.run(
        ['systemd-analyze', 'security', '--offline=true', '--no-pager',
         str(UNITS / f'{name}.service')],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    match = re.search(rf'Overall exposure level for {name}.service: ([0-9.]+)',
                      result.stdout)
    assert match, result.stdout[-2000:]
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def _verify_in(units, name):
    """systemd-analyze verify with ``units`` first in the search path, so
    that its drop-in directories count."""
    return subprocess.run(
        ['systemd-analyze', 'verify', str(units / f'{name}.service')],
        env={**os.environ, 'SYSTEMD_UNIT_PATH': f'{units}:'},
        capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which('systemd-analyze') is None,
                    reason='systemd-analyze is not installed (bindep: systemd)')
@pytest.mark.parametrize('name', NAMES)
def test_virtualenv_drop_in_replaces_exec_start(tmp_path, name):
    # doc/source/install.rst's drop-in for a virtualenv install: verify
    # fails on /usr/bin/<name> (absent here) unless the drop-in replaced it.
    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    (venv_bin / name).write_text('#!/bin/sh\n')
    (venv_bin / name).chmod(0o755)
    units = tmp_path / 'units'
    drop_ins = units / f'{name}.service.d'
    drop_ins.mkdir(parents=True)
    (units / f'{name}.service').write_text((UNITS / f'{name}.service').read_text())
    (drop_ins / 'virtualenv.conf').write_text(
        f'[Service]\nExecStart=\nExecStart={venv_bin / name} '
        '--config-file /etc/nova_rt/nova-rt.conf\n')
    result = _verify_in(units, name)
    assert result.returncode == 0, result.stderr
    (drop_ins / 'virtualenv.conf').unlink()
    result = _verify_in(units, name)
    assert f'/usr/bin/{name} is not executable' in result.stderr


API = 'nova-rt-placement-api'


def test_api_unit_runs_the_wsgi_script_with_the_same_hardening():
    service = _unit(API)['Service']
    for key, value in COMMON['Service'].items():
        if key in ('Type', 'NotifyAccess', 'ExecReload'):
            continue                    # pbr's script never notifies
        assert service.get(key) == value, key
    assert service['Type'] == 'simple'
    assert service['ExecStart'] == (
        f'/usr/bin/{API} --port 8778 -- --config-file '
        '/etc/nova_rt/nova-rt.conf')
    assert _unit(API)['Install']['WantedBy'] == 'multi-user.target'


@pytest.mark.skipif(shutil.which('systemd-analyze') is None,
                    reason='systemd-analyze is not installed (bindep: systemd)')
def test_api_unit_verifies_and_rates_ok(tmp_path):
    stand_in = tmp_path / API
    stand_in.write_text('#!/bin/sh\n')
    stand_in.chmod(0o755)
    unit = tmp_path / f'{API}.service'
    unit.write_text((UNITS / f'{API}.service').read_text().replace(
        f'/usr/bin/{API}', str(stand_in)))
    result = subprocess.run(['systemd-analyze', 'verify', str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == '', \
        result.stderr
    result = subprocess.run(
        ['systemd-analyze', 'security', '--offline=true', '--no-pager',
         str(unit)], capture_output=True, text=True, timeout=60)
    match = re.search(rf'Overall exposure level for {API}.service: ([0-9.]+)',
                      result.stdout)
    assert match and float(match.group(1)) <= MAX_EXPOSURE, result.stdout
