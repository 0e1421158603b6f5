"""The ``nova-rt-placement`` process: an oslo.service Service around one RPC
server on topic ``nova-rt-placement``, run by ``nova_rt.daemon.run``.

Start-up waits for RabbitMQ (retried with back-off, SIGTERM honoured), then
serves; systemd hears ``READY=1`` once the server listens, and
``WATCHDOG=1`` while the RPC worker pool runs work and the database answers
(a database that refuses, e.g. PostgreSQL down, is not a wedge: calls are
answered with an error and a restart would not help; one that hangs is).

Import this module only after the oslo.service backend has been chosen
(``nova_rt.cmd.placement`` does): it imports oslo.service and, through
``nova_rt.rpc``, oslo.messaging.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Optional

import sqlalchemy as sa
from oslo_config import cfg
from oslo_service import service

from nova_rt import daemon
from nova_rt import gcutil
from nova_rt import metrics as metrics_mod
from nova_rt import rpc
from nova_rt import systemd
from nova_rt.identity import config as identity_config
from nova_rt.placement import db
from nova_rt.placement import heartbeats
from nova_rt.placement import housekeeping
from nova_rt.placement import manager

LOG = logging.getLogger(__name__)

#: Worker threads serving calls, unless ``[DEFAULT] executor_thread_pool_size``
#: is set in the configuration.  Every call is a short transaction, so a few
#: threads keep the database busy; oslo.messaging's 64 only contend for the
#: GIL: over RPC a report cost the process 2.7 ms of CPU with 64 threads and
#: 2.0 ms with 4 (bench/bench_placement.py, 8 callers, PostgreSQL).
DEFAULT_POOL_SIZE = 4


def pool_size(conf) -> int:
    """The operator's ``executor_thread_pool_size`` if set, else ours."""
    where = conf.get_location('executor_thread_pool_size')
    if where is not None and where.location != cfg.Locations.opt_default:
        return conf.executor_thread_pool_size
    return DEFAULT_POOL_SIZE


class PlacementService(service.Service):
    """Serves the placement RPC methods until stopped (SIGTERM)."""

    def __init__(self, conf, transport=None):
        super().__init__()
        self.conf = conf
        self.transport = transport
        self.rpcserver = None
        self.housekeeper = None
        self.heartbeats = None
        self.engine = None
        self._db_probe: Optional[systemd.TaskProbe] = None
        self._started_at: Optional[datetime.datetime] = None
        self.metrics = metrics_mod.PlacementMetrics()

    def start(self, startup: Optional[daemon.StartUp] = None):
        startup = startup or daemon.StartUp(systemd.Notifier({}))
        super().start()
        transport = self.transport
        if transport is None:
            # (Made before the probe: it registers the driver's options.)
            transport = self.transport = rpc.get_transport(self.conf)
            daemon.wait_for_broker(self.conf, startup)
        url = self.conf.placement_database.connection
        startup.phase(f'opening the database {db.safe_url(url)}')
        engine = self.engine = db.get_engine(url)
        interval_ms = self.conf.placement.heartbeat_flush_interval_ms
        if interval_ms:
            self.heartbeats = heartbeats.HeartbeatCoalescer(
                engine, interval_ms / 1000, self.metrics)
            self.heartbeats.start()
        endpoint = manager.PlacementEndpoint(
            engine, self.conf, identity=identity_config.guard(
                self.conf, 'placement', topic=rpc.PLACEMENT_TOPIC,
                server=None), metrics=self.metrics,
            heartbeats=self.heartbeats)
        # Every process listens on the shared topic queue (competing
        # consumers); the server name only has to be unique per process.
        target = rpc.placement_target()(
            server=f'{self.conf.host}.{os.getpid()}')
        self.rpcserver = rpc.get_server(self.conf, transport, target,
                                        [endpoint])
        self.metrics.rpc.watch(self.rpcserver)
        # (The server registered executor_thread_pool_size.)
        workers = pool_size(self.conf)
        startup.phase(f'starting the RPC server on topic {rpc.PLACEMENT_TOPIC}')
        self.rpcserver.start(override_pool_size=workers)
        self._started_at = datetime.datetime.now(datetime.timezone.utc)
        self.housekeeper = housekeeping.Housekeeper(
            engine, self.conf.placement_database.vacuum_interval)
        self.housekeeper.start()
        frozen = gcutil.freeze_startup_objects()
        LOG.info('nova-rt-placement serving topic %s on database %s '
                 '(%d worker threads)', rpc.PLACEMENT_TOPIC,
                 db.safe_url(url), workers)
        LOG.debug('%d start-up objects exempted from garbage collection',
                  frozen)

    def _select_one(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))

    def status(self) -> str:
        """One line for systemd's STATUS."""
        problem = self._db_probe.last_error if self._db_probe else None
        database = f'database failing: {problem}' if problem else 'database up'
        since = (f'{self._started_at:%Y-%m-%d %H:%M:%S} UTC'
                 if self._started_at else 'not yet')
        return (f'serving topic {rpc.PLACEMENT_TOPIC} since {since}; '
                f'{database}')

    def watchdog_probes(self, limit: Optional[float]) -> dict:
        """What must make progress for systemd to hear WATCHDOG=1."""
        self._db_probe = systemd.TaskProbe(systemd.in_thread,
                                           self._select_one, limit)
        probes = {'database': self._db_probe}
        pool = systemd.rpc_pool_probe(self.rpcserver, limit)
        if pool is not None:
            probes['RPC worker pool'] = pool
        return probes

    def stop(self, graceful=True):
        if self.rpcserver is not None:
            self.rpcserver.stop()
            self.rpcserver.wait()
            self.rpcserver = None
        if self.heartbeats is not None:
            # After the server: the heartbeats it took last are written too.
            self.heartbeats.stop()
            self.heartbeats = None
        if self.housekeeper is not None:
            self.housekeeper.stop()
            self.housekeeper = None
        super().stop(graceful)
        db.dispose_engines()
        LOG.info('nova-rt-placement stopped')
