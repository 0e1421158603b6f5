"""The systemd units in etc/systemd are valid and keep the hardening we promise."""

import configparser
import pathlib
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
    },
}


def _unit(name):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
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
