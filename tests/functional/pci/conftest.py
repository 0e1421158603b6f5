"""umockdev testbeds for the PCI functional tests.

pyudev (libudev) sees a testbed only when the process runs with umockdev's
preload library, so these tests must run under ``umockdev-wrapper``::

    umockdev-wrapper .venv/bin/python -m pytest tests/functional/pci -q

Outside the wrapper they fail with that instruction rather than pass without
testing anything; they skip only where umockdev itself is not installed.
"""

import gc
import os
import pathlib
import shutil

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'pci'
SRIOV_HOST = FIXTURES / 'sriov-host.umockdev'


def _umockdev():
    gi = pytest.importorskip('gi')
    try:
        gi.require_version('UMockdev', '1.0')
    except ValueError:
        pytest.skip('gir1.2-umockdev-1.0 is not installed')
    from gi.repository import UMockdev
    return UMockdev


def preloaded() -> bool:
    return 'libumockdev-preload' in os.environ.get('LD_PRELOAD', '')


@pytest.fixture
def testbed():
    """An empty testbed: this process's /sys is the testbed's until teardown."""
    UMockdev = _umockdev()
    if not preloaded():
        if shutil.which('umockdev-wrapper') is None:
            pytest.skip('umockdev is not installed')
        pytest.fail('PCI functional tests need umockdev\'s preload: run pytest '
                    'as "umockdev-wrapper .venv/bin/python -m pytest ..."')
    bed = UMockdev.Testbed.new()
    yield bed
    # Finalising the testbed removes its directory and unsets UMOCKDEV_DIR,
    # so later tests in this process see the real /sys again.
    del bed
    gc.collect()


@pytest.fixture
def sriov_testbed(testbed):
    assert testbed.add_from_file(str(SRIOV_HOST))
    return testbed
