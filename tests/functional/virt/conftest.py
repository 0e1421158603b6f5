import os

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'libvirtd: needs a real libvirtd with QEMU (tools/setup-libvirtd.sh); '
                   'runs only with NOVA_RT_LIBVIRTD=1')


def pytest_collection_modifyitems(config, items):
    if os.environ.get('NOVA_RT_LIBVIRTD') == '1':
        return
    skip = pytest.mark.skip(reason='real libvirtd test: set NOVA_RT_LIBVIRTD=1 '
                                   '(after tools/setup-libvirtd.sh) to run it')
    for item in items:
        if 'libvirtd' in item.keywords:
            item.add_marker(skip)
