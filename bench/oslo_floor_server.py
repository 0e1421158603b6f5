"""An oslo.messaging RPC server that does nothing: the floor under the
placement benchmark's RPC figures.

    python bench/oslo_floor_server.py --config-file placement.conf

Serves topic ``nova-rt-floor`` with the transport, exchange, executor and
worker threads that ``nova-rt-placement`` would use from that file (the same
``rpc.get_server`` and pool size, start-up objects frozen as the service
does), and two methods that touch no database: ``get_allocations
(consumer_uuid)``, a call answering ``{}``, and ``heartbeat(host, root_uuid,
sent_at)``, a cast with placement's arguments that does nothing.  What one
such process can take per second, and the CPU it spends per message, is
what oslo.messaging and the machine leave for the placement service's own
work (bench/bench_placement.py and ``bench_fleet.py --saturate`` print it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOPIC = 'nova-rt-floor'


def _endpoint(target):
    import oslo_messaging as messaging

    class Endpoint:
        def __init__(self):
            self.target = target

        @messaging.expose       # rpc.get_server serves exposed methods only
        def get_allocations(self, context, consumer_uuid):
            return {}

        @messaging.expose
        def heartbeat(self, context, host, root_uuid, sent_at):
            return None

    return Endpoint()


def main(argv=None) -> int:
    from nova_rt.cmd import placement as cmd
    conf = cmd._parse(sys.argv[1:] if argv is None else argv,
                      'oslo-floor-server')
    cmd.init_backend(conf)
    import oslo_messaging as messaging

    from nova_rt import gcutil
    from nova_rt import rpc
    from nova_rt.placement import service

    transport = rpc.get_transport(conf)
    target = messaging.Target(topic=TOPIC, server=conf.host,
                              version=rpc.RPC_VERSION)
    server = rpc.get_server(conf, transport, target, [_endpoint(target)])
    server.start(override_pool_size=service.pool_size(conf))
    gcutil.freeze_startup_objects()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f'serving topic {TOPIC}', flush=True)
    stop.wait()
    server.stop()
    server.wait()
    transport.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
