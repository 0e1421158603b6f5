import os

import pytest

from tests.functional.compute.fixtures import compute_placement  # noqa: F401
from tests.functional.virt import libvirtd

# NOVA_RT_LIBVIRTD: unset, the real-libvirtd tests run wherever libvirtd
# answers and are skipped elsewhere; "1" (tools/run-tests.sh once
# tools/setup-libvirtd.sh has succeeded) makes a libvirtd that does not answer
# a failure, so that CI cannot pass by skipping them; "0" skips them.
ENV = 'NOVA_RT_LIBVIRTD'
_SKIPPED = pytest.StashKey[str]()     # why they were skipped
_MISSING = pytest.StashKey[str]()     # why they fail ({ENV}=1)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'libvirtd: needs a real libvirtd with QEMU on qemu:///system '
                   '(tools/setup-libvirtd.sh); skipped where none answers, '
                   f'unless {ENV}=1')


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if 'libvirtd' in item.keywords]
    if not marked:
        return
    wanted = os.environ.get(ENV)
    if wanted == '0':
        reason = f'switched off ({ENV}=0)'
    else:
        reason = libvirtd.unavailable_reason()
        if reason is not None and wanted == '1':
            # Left to run: each fails with the reason (see _require_libvirtd).
            config.stash[_MISSING] = reason
            return
    if reason is None:
        return
    config.stash[_SKIPPED] = reason
    skip = pytest.mark.skip(reason=f'{reason}: tools/setup-libvirtd.sh starts one')
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _require_libvirtd(request):
    reason = request.config.stash.get(_MISSING, None)
    if reason is not None and 'libvirtd' in request.keywords:
        pytest.fail(f'{ENV}=1 but {reason}', pytrace=False)


def pytest_terminal_summary(terminalreporter, config):
    # The one line that says why the real-hypervisor tests did not run,
    # even under -q, where skip reasons are not shown.
    reason = config.stash.get(_SKIPPED, None)
    if reason is not None:
        terminalreporter.write_line(f'real libvirtd tests not run: {reason}')


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
