import os

import pytest

from tests.functional.virt import libvirtd


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


@pytest.fixture
def libvirt_domains():
    """Factory ``start(vcpus=1, memory_mib=32)`` of running domains on
    qemu:///system, all destroyed and undefined when the test ends."""
    import libvirt
    conn = libvirt.open(libvirtd.URI)
    started = []

    def start(vcpus: int = 1, memory_mib: int = 32):
        dom = libvirtd.start_domain(conn, vcpus, memory_mib)
        started.append(dom)
        return dom

    try:
        yield start
    finally:
        try:
            for dom in started:
                libvirtd.remove_domain(dom)
        finally:
            conn.close()
