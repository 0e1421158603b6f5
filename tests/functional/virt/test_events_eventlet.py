"""Events still flow when eventlet has monkey-patched threading.

Run in a child interpreter: monkey-patching is process-wide and would leak
into every other test.
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('eventlet')

CHILD = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import sys, threading, time
    from nova_rt.virt import events
    from nova_rt.virt.host import LibvirtHost
    sys.path.insert(0, sys.argv[2])
    from tests.functional.virt import hostxml

    assert events.native_threading() is not threading
    got = []
    host = LibvirtHost(hostxml.write_host_xml(sys.argv[1], n_domains=1))
    host.start_events(got.append)
    dom = host.connection.defineXML(hostxml.domain_xml(42))
    dom.create()
    deadline = time.time() + 5
    while len(got) < 2 and time.time() < deadline:
        eventlet.sleep(0.05)       # green sleep: the native loop runs regardless
    host.stop()
    print(sorted(e['event'] for e in got))
''')


def test_events_with_eventlet_monkey_patching(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    result = subprocess.run(
        [sys.executable, '-c', CHILD, str(tmp_path / 'host.xml'), repo],
        capture_output=True, text=True, timeout=60, cwd=repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['defined', 'started']"
