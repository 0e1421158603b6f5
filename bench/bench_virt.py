#!/usr/bin/env python3
"""Time LibvirtHost.get_host_info() and list_domains() on a generated host.

    .venv/bin/python bench/bench_virt.py [--domains 1000] [--runs 7]

Prints one JSON object: median and p95 seconds per call, plus the cost of
the raw libvirt calls list_domains() is built from, so a regression can be
placed (libvirt round trips vs. XML parsing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import libvirt  # noqa: E402

from nova_rt.virt import domain_xml  # noqa: E402
from nova_rt.virt.host import LibvirtHost  # noqa: E402


def _hostxml():
    path = os.path.join(REPO, 'tests', 'functional', 'virt', 'hostxml.py')
    spec = importlib.util.spec_from_file_location('hostxml', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(fn, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return {'median_s': round(statistics.median(samples), 5), 'p95_s': round(p95, 5),
            'runs': runs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--domains', type=int, default=1000)
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args(argv)
    hostxml = _hostxml()
    with tempfile.TemporaryDirectory() as tmp:
        uri = hostxml.write_host_xml(os.path.join(tmp, 'host.xml'), n_domains=args.domains)
        host = LibvirtHost(uri, instances_path=tmp)
        start = time.perf_counter()
        host.connection                 # the test driver parses the host file here
        open_s = time.perf_counter() - start
        domains = host.list_domains()
        assert len(domains) == args.domains, len(domains)
        conn = host.connection
        xmls = [d.XMLDesc(0) for d in conn.listAllDomains(0)]
        result = {
            'uri': 'test:///<tmp>/host.xml', 'domains': args.domains,
            'cpus': os.cpu_count(), 'open_s': round(open_s, 4),
            'get_host_info': _timed(host.get_host_info, args.runs),
            'list_domains': _timed(host.list_domains, args.runs),
            'parts': {
                'getAllDomainStats_state': _timed(
                    lambda: conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0),
                    args.runs),
                'XMLDesc_all': _timed(
                    lambda: [d.XMLDesc(0) for d in conn.listAllDomains(0)], args.runs),
                'info_all': _timed(
                    lambda: [d.info() for d in conn.listAllDomains(0)], args.runs),
                'state_isActive_all': _timed(
                    lambda: [(d.state(), d.isActive()) for d in conn.listAllDomains(0)],
                    args.runs),
                'parse_domain_xml_all': _timed(
                    lambda: [domain_xml.parse_domain_xml(x) for x in xmls], args.runs),
            },
        }
        host.stop()
    print(json.dumps(result, indent=2))
    return result


if __name__ == '__main__':
    main()
