"""A libvirt test-driver host file with many domains (no nova_rt imports).

The benchmark imports this too.  In a ``test:///path/host.xml`` node file every
<domain> is defined and running unless it carries the test driver's own
namespace element ``<test:runstate>`` directly under <domain> (checked against
the real driver: inside <metadata> it is ignored).  Run states are libvirt's
virDomainState numbers: 1 running, 3 paused, 5 shut off.
"""

from __future__ import annotations

import uuid as uuidlib

TEST_NS = 'http://libvirt.org/schemas/domain/test/1.0'
RUNNING, PAUSED, SHUTOFF = 1, 3, 5


def domain_uuid(index: int) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f'nova-rt-test-domain-{index}'))


def domain_state(index: int, shutoff_every: int = 4) -> int:
    return SHUTOFF if index % shutoff_every == 0 else RUNNING


def domain_xml(index: int, state: int = RUNNING) -> str:
    vcpus = 1 + index % 4
    memory_mib = 256 * (1 + index % 8)
    runstate = (f"<test:runstate xmlns:test='{TEST_NS}'>{state}</test:runstate>"
                if state != RUNNING else '')
    pin = ''.join(f"<vcpupin vcpu='{v}' cpuset='{(index + v) % 8}'/>" for v in range(vcpus))
    return (f"<domain type='test'><name>guest-{index:05d}</name>"
            f"<uuid>{domain_uuid(index)}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
            f"<cputune>{pin}</cputune>"
            f"<os><type arch='i686'>hvm</type></os>{runstate}</domain>")


def host_xml(n_domains: int = 1000, shutoff_every: int = 4, cpus: int = 8,
             memory_kib: int = 64 * 1024 * 1024) -> str:
    """A <node> document: 2 sockets, ``cpus`` CPUs, ``n_domains`` domains.

    Every ``shutoff_every``-th domain (0, 4, 8 ...) is shut off, the rest run.
    """
    cores = max(1, cpus // 4)
    domains = '\n'.join(domain_xml(i, domain_state(i, shutoff_every))
                        for i in range(n_domains))
    return (f"<node>\n<cpu><nodes>1</nodes><sockets>2</sockets><cores>{cores}</cores>"
            f"<threads>2</threads><active>{cpus}</active><mhz>2000</mhz>"
            f"<model>i686</model></cpu>\n<memory>{memory_kib}</memory>\n{domains}\n</node>\n")


def write_host_xml(path, **kwargs) -> str:
    """Write the host file to ``path``; returns its ``test://`` URI."""
    with open(path, 'w') as f:
        f.write(host_xml(**kwargs))
    return f'test://{path}'


def expected(n_domains: int = 1000, shutoff_every: int = 4) -> dict:
    """What the adapter should read back from such a host."""
    running = [i for i in range(n_domains) if domain_state(i, shutoff_every) == RUNNING]
    return {'domains': n_domains, 'running': len(running),
            'shutoff': n_domains - len(running),
            'running_vcpus': sum(1 + i % 4 for i in running),
            'running_memory_mb': sum(256 * (1 + i % 8) for i in running)}
