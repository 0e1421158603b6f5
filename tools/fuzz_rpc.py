"""Fuzz the compute and placement RPC APIs from outside.

    .venv/bin/python tools/fuzz_rpc.py [--per-method 2000] [--targets compute,placement]
        [--methods instance_claim,...] [--backend threading] [--seed N]

Starts a placement process and a nova-rt-compute on libvirt's test driver
(the functional tests' fixtures, over the local RabbitMQ), then sends each
method of each table ``--per-method`` payloads through an oslo.messaging
client: valid calls mutated by hypothesis (missing and unknown arguments,
wrong types, huge and negative numbers, NaN and infinity, long strings,
huge lists and mappings, deep nesting, wrong uuids, wrong contexts; see
``tests/functional/rpc_fuzz.py``).  It prints, per method, the answers and
the refusals by class, the unexpected errors (anything outside the
contract's error classes, or a state changed by a refusal, or a daemon
gone) and the time taken; it exits 1 if there was anything unexpected.
"""

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

from tests.functional import rpc_fuzz  # noqa: E402
from tests.functional import rpc_fuzz_targets  # noqa: E402
from tests.functional.compute import fixtures  # noqa: E402
from tests.functional.placement import fixtures as placement_fixtures  # noqa: E402


def _run(name, make_target, args, report) -> None:
    target, transport = make_target()
    try:
        started = time.monotonic()
        rpc_fuzz.fuzz(target, args.per_method, report, seed=args.seed,
                      methods=args.methods.split(',') if args.methods else None)
        print(f'{name}: {time.monotonic() - started:.1f} s, daemon '
              f'{"alive" if target.alive() else "GONE"}', flush=True)
    finally:
        transport.cleanup()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--per-method', type=int, default=2000)
    parser.add_argument('--targets', default='compute,placement')
    parser.add_argument('--methods', default='',
                        help='only these methods (comma-separated)')
    parser.add_argument('--backend', default='threading',
                        choices=('threading', 'eventlet'))
    parser.add_argument('--seed', type=int, default=None,
                        help="hypothesis's seed (random by default)")
    args = parser.parse_args(argv)
    targets = args.targets.split(',')
    report = rpc_fuzz.Report()
    logs = []
    with tempfile.TemporaryDirectory(prefix='nova-rt-fuzz-') as workdir:
        url = f'sqlite:///{workdir}/placement.sqlite'
        with placement_fixtures.running_placement(url, workdir) as placement:
            if 'placement' in targets:
                _run('placement', lambda: rpc_fuzz_targets.placement_target(
                    placement), args, report)
            if 'compute' in targets:
                with fixtures.running_compute_stack(
                        workdir, args.backend, placement=placement) as stack:
                    _run(f'compute ({args.backend})',
                         lambda: rpc_fuzz_targets.compute_target(stack),
                         args, report)
                    logs.append(stack.compute.log_text())
            logs.append(placement.log_text())
    print('\n'.join(report.lines()))
    # The traceback's header, not the word: a fuzzed argument may be named
    # "Traceback" and its refusal logged.
    tracebacks = sum(log.count(rpc_fuzz.TRACEBACK) for log in logs)
    print(f'tracebacks in the daemons\' logs: {tracebacks}')
    for log in logs:
        at = log.find(rpc_fuzz.TRACEBACK)
        if at != -1:
            # The first one, with the lines that led to it.
            start = log.rfind('\n', 0, max(0, at - 2000))
            print(log[start + 1:at + 4000])
    return 1 if report.findings or tracebacks else 0


if __name__ == '__main__':
    sys.exit(main())
