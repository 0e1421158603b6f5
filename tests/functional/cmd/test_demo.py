"""The demo against libvirt's real test driver, as tools/quickstart.sh runs it."""

import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip('libvirt')

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_quickstart_demo_prints_the_test_driver_inventory():
    result = subprocess.run(
        [sys.executable, '-m', 'tools.demo', '--format', 'json', 'inventory'],
        cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report['uri'] == 'test:///default'
    # test:///default: two cells of 8 CPUs, 3 GiB of memory in getInfo().
    assert report['inventory']['VCPU'] == 16
    assert report['inventory']['MEMORY_MB'] == 3072
    assert report['inventory']['DISK_GB'] > 0
    assert [cell['id'] for cell in report['numa_cells']] == [0, 1]


def test_unreachable_hypervisor_is_one_clear_error():
    result = subprocess.run(
        [sys.executable, '-m', 'tools.demo', 'inventory',
         '--uri', 'test:///nonexistent/host.xml'],
        cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert 'demo: The hypervisor cannot be reached' in result.stderr
    assert result.stdout == ''
