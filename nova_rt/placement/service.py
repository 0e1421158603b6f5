"""The ``nova-rt-placement`` process: an oslo.service Service around one RPC
server on topic ``nova-rt-placement``.

Import this module only after the oslo.service backend has been chosen
(``nova_rt.cmd.placement`` does): it imports oslo.service and, through
``nova_rt.rpc``, oslo.messaging.
"""

from __future__ import annotations

import logging
import os

from oslo_service import service

from nova_rt import rpc
from nova_rt.placement import db
from nova_rt.placement import manager

LOG = logging.getLogger(__name__)


class PlacementService(service.Service):
    """Serves the placement RPC methods until stopped (SIGTERM)."""

    def __init__(self, conf, transport=None):
        super().__init__()
        self.conf = conf
        self.transport = transport
        self.rpcserver = None

    def start(self):
        super().start()
        transport = self.transport or rpc.get_transport(self.conf)
        url = self.conf.placement_database.connection
        endpoint = manager.PlacementEndpoint(db.get_engine(url), self.conf)
        # Every process listens on the shared topic queue (competing
        # consumers); the server name only has to be unique per process.
        target = rpc.placement_target()(
            server=f'{self.conf.host}.{os.getpid()}')
        self.rpcserver = rpc.get_server(self.conf, transport, target,
                                        [endpoint])
        self.rpcserver.start()
        LOG.info('nova-rt-placement serving topic %s on database %s',
                 rpc.PLACEMENT_TOPIC, db.safe_url(url))

    def stop(self, graceful=True):
        if self.rpcserver is not None:
            self.rpcserver.stop()
            self.rpcserver.wait()
            self.rpcserver = None
        super().stop(graceful)
        db.dispose_engines()
        LOG.info('nova-rt-placement stopped')
