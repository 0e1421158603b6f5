"""Events flow, and are delivered at once, when eventlet has monkey-patched
threading.

Run in a child interpreter: monkey-patching is process-wide and would leak
into every other test.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('eventlet')

CHILD = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import json, sys, threading, time
    from nova_rt.virt import events
    from nova_rt.virt.host import LibvirtHost
    sys.path.insert(0, sys.argv[2])
    from tests.functional.virt import hostxml

    assert events.native_threading() is not threading
    got = []
    # A green Event, as the audit loop waits on: set from libvirt's native
    # thread it would wake no one before the wait's own timeout.
    started = threading.Event()

    def on_event(event):
        got.append(event['event'])
        if event['event'] == 'started':
            started.set()

    host = LibvirtHost(hostxml.write_host_xml(sys.argv[1], n_domains=1))
    host.start_events(on_event)
    dom = host.connection.defineXML(hostxml.domain_xml(42))
    t0 = time.monotonic()
    dom.create()
    woke = started.wait(5)
    latency = time.monotonic() - t0
    # The hand-off itself, from a native thread, into a green waiter.
    handed = threading.Event()
    native = events.native_threading()
    t1 = time.monotonic()
    native.Thread(target=events.handoff().call, args=(handed.set,)).start()
    handed.wait(5)
    handoff_latency = time.monotonic() - t1
    host.stop()
    print(json.dumps({'events': got, 'woke': woke, 'latency': latency,
                      'handoff_latency': handoff_latency}))
''')


def test_events_delivered_under_eventlet(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    result = subprocess.run(
        [sys.executable, '-c', CHILD, str(tmp_path / 'host.xml'), repo],
        capture_output=True, text=True, timeout=60, cwd=repo)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['events'] == ['defined', 'started']
    assert out['woke']
    # Polled, these were up to the wait's own timeout (5s; the audit loop's
    # was 1s); delivered, a few milliseconds.
    assert out['latency'] < 0.5, out
    assert out['handoff_latency'] < 0.5, out
