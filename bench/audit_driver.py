#!/usr/bin/env python3
"""Back-to-back ``run_audit`` calls to one compute daemon, from a process of
their own (``bench_rpc.audits_running``).

    python bench/audit_driver.py --exchange X --url TRANSPORT_URL --host H
        [--calls audits|noops]

Prints ``started`` once the first call has been answered, calls until its
standard input is closed, then prints the durations (seconds) as one JSON
list: the daemon's own for audits, the round trip's for ``noops``.

``noops`` are ``abort_instance_claim`` calls for instances the host never
saw: the daemon's edge, lock and transition without a write or an audit, so
that claims measured meanwhile show what any back-to-back caller costs them
on this machine, apart from what the audit itself does.

In its own process so that the benchmark process measuring claims has no
other busy thread: in one process the audit caller's client
work holds the GIL that the claim's reply has to wait for (up to the 5 ms
switch interval), and that would be counted as the daemon's.
"""

import argparse
import json
import os
import sys
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from oslo_service import backend as _backend  # noqa: E402

_backend.init_backend(_backend.BackendType.THREADING)

from tests.functional.compute import fixtures  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--exchange', required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--host', required=True)
    parser.add_argument('--calls', choices=('audits', 'noops'),
                        default='audits')
    args = parser.parse_args()
    api, transport = fixtures.compute_client(args.exchange, url=args.url,
                                             timeout=120)
    stop = threading.Event()

    def until_stdin_closes():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    def audit():
        return api.run_audit({}, args.host)['duration_s']

    def noop():
        started = time.perf_counter()
        api.abort_instance_claim({}, args.host, instance_uuid=str(uuid.uuid4()))
        return time.perf_counter() - started

    call = audit if args.calls == 'audits' else noop
    durations = []
    try:
        while not stop.is_set():
            durations.append(call())
            if len(durations) == 1:
                print('started', flush=True)
    finally:
        transport.cleanup()
    print(json.dumps(durations), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
