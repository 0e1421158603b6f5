"""The nova-rt-compute daemon: start order, audit loop, heartbeat, signals.

Start order (issue 5): config validated (by ``nova_rt.cmd.compute``), local
store loaded, libvirt connected (or retrying in the background), PCI devices
discovered, allocation ratios settled, first audit, first report, and only
then the RPC server starts listening, so that no call is served from an empty
tracker.  systemd hears ``READY=1`` at that point (``nova_rt.daemon.run``),
and a ``STATUS=`` line at each step before it.  Every step that waits for
the outside is bounded or retried with back-off, and gives way to SIGTERM:
RabbitMQ is probed before anything waits for it; placement's calls at start-up
wait at most ``START_CALL_TIMEOUT`` and, published ``mandatory``, come back
at once while placement's queue does not exist yet; libvirt gets one attempt
and is then retried in the background.  Without placement the daemon still
starts, from its last known allocation ratios, and the first report follows
with back-off.

One loop thread runs the periodic audit every ``update_resources_interval``;
libvirt lifecycle and udev events bring it forward through the tracker's
``audit_wanted`` event, which coalesces any number of events into at most one
queued audit.  A failing audit is logged and the loop goes on.  Claims never
wait for the loop (the tracker only takes its lock to swap the audit's result).
A separate thread casts the heartbeat, so that liveness does not depend on how
long an audit or a report takes.

Signals are handled by ``run`` in the main thread, the same way for both
oslo.service backends: SIGTERM stops taking calls, finishes those in flight,
flushes the last report and returns 0 within ``graceful_shutdown_timeout``;
SIGHUP re-reads the mutable options, applied at the next audit.  The systemd
watchdog is pinged while the audit loop and the RPC worker pool make
progress.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Optional

import oslo_messaging as messaging
from oslo_service import service as oslo_service

from nova_rt import daemon
from nova_rt import gcutil
from nova_rt import metrics as metrics_mod
from nova_rt import rpc
from nova_rt import systemd
from nova_rt.compute import manager as manager_mod
from nova_rt.compute import notifications
from nova_rt.compute import ratios as ratios_mod
from nova_rt.compute import reporter as reporter_mod
from nova_rt.compute import rpcapi as compute_rpcapi
from nova_rt.compute import store as store_mod
from nova_rt.compute import tracker as tracker_mod
from nova_rt.identity import config as identity_config

LOG = logging.getLogger(__name__)

#: How soon after a claim placement hears of it; claims in the meantime are
#: coalesced into one report.
REPORT_DELAY = 1.0
#: Retry period for a report placement did not take (it or RabbitMQ is away).
REPORT_RETRY = 10.0
#: Bound of placement calls made by the daemon, so a missing placement only
#: delays reporting, never the service.
PLACEMENT_TIMEOUT = 30.0
#: Bound of each placement call during start-up: a placement that does not
#: answer delays READY by this much, not by the full timeout.
START_CALL_TIMEOUT = 3.0
#: Broker connection attempts of one placement call, after which it fails
#: (and the report is retried later) rather than holding the audit loop.
BROKER_RETRIES = 2
FLUSH_TIMEOUT = 5.0


class _OffHub:
    """Runs a libvirt host's blocking calls in native threads under eventlet.

    A libvirt call blocks in C; on the eventlet hub it would stop every green
    thread (RPC included) for its duration.
    """

    def __init__(self, host):
        from eventlet import tpool
        self._host = host
        self._tpool = tpool

    def get_host_info(self):
        return self._tpool.execute(self._host.get_host_info)

    def list_domains(self):
        return self._tpool.execute(self._host.list_domains)

    def __getattr__(self, name):
        return getattr(self._host, name)


class ComputeService(oslo_service.ServiceBase):
    """The daemon.  Sources may be injected (tests); else built from ``conf``."""

    def __init__(self, conf, *, host_source=None, pci_source=None,
                 pci_monitor=None, placement=None, transport=None):
        self.conf = conf
        self.host = conf.host
        self._host_source = host_source
        self._pci_source = pci_source
        self._pci_monitor = pci_monitor
        self._pci_rediscovery = None
        self._placement = placement
        self._transport = transport
        self.store = None
        self.tracker = None
        self.reporter = None
        self.manager = None
        self.notifier = None
        self.rpc_server = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._audit_lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._report_at: Optional[float] = None
        self._reload_wanted = False
        self._threads: list = []
        self._audit_progress = systemd.Heartbeat()
        self._last_audit_at: Optional[datetime.datetime] = None
        self.last_audit: Optional[dict] = None
        self.audits = 0
        self._ratios_at = 0.0
        self._own_transport = False
        self._audit_waiters: list = []
        self._identity_caller = None
        self._waiters_lock = threading.Lock()
        self.metrics = metrics_mod.ComputeMetrics()
        self.metrics.placement_unreachable.set_function(
            lambda: float(bool(self.reporter and self.reporter.unreachable)))

    # ------------------------------------------------------------ start

    def _build_sources(self):
        conf = self.conf
        if self._host_source is None:
            from nova_rt.virt import host as virt_host
            self._host_source = virt_host.LibvirtHost(
                conf.libvirt.connection_uri, conf.instances_path,
                conf.libvirt.disk_pool, conf.libvirt.reconnect_max_interval,
                full_reread_interval=conf.compute.audit_full_reread_interval)
        if conf.concurrency_backend == 'eventlet':
            self._host_source = _OffHub(self._host_source)
        if self._pci_source is None:
            from nova_rt.pci import rediscovery
            from nova_rt.pci import udev
            if self._pci_monitor is None:
                self._pci_monitor = udev.PciMonitor()
            self._pci_source = self._pci_rediscovery = rediscovery.Rediscovery(
                udev.discover, self._pci_monitor,
                conf.compute.audit_full_reread_interval)

    def _caller(self):
        if self._identity_caller is None:
            self._identity_caller = identity_config.caller(self.conf, 'compute')
        return self._identity_caller

    def _placement_client(self, timeout: float):
        from nova_rt.placement import rpcapi as placement_rpcapi
        api = placement_rpcapi.PlacementAPI(
            self._transport, timeout=timeout, identity=self._caller(),
            version_cap=self.conf.upgrade_levels.placement)
        # mandatory: a call no queue takes (placement not started yet) comes
        # back at once as MessageUndeliverable instead of after the timeout.
        api.client = api.client.prepare(
            transport_options=messaging.TransportOptions(at_least_once=True),
            retry=BROKER_RETRIES)
        return api

    def start(self, startup: Optional[daemon.StartUp] = None):
        """Start-up, step by step (see the module's docstring).

        ``startup`` (from ``daemon.run``) shows each step to systemd and
        cancels the start on SIGTERM.
        """
        startup = startup or daemon.StartUp(systemd.Notifier({}))
        conf = self.conf
        started = time.monotonic()
        if self._transport is None:
            self._transport = compute_rpcapi.get_transport(conf)
            self._own_transport = True
        start_placement = self._placement
        if self._placement is None:
            from nova_rt.placement import rpcapi as placement_rpcapi
            # The first client registers rpc_response_timeout, which then
            # bounds ours.
            placement_rpcapi.PlacementAPI(self._transport)
            self._placement = self._placement_client(
                min(conf.rpc_response_timeout, PLACEMENT_TIMEOUT))
            start_placement = self._placement_client(
                min(conf.rpc_response_timeout, START_CALL_TIMEOUT))
        startup.phase(f'opening the local state store in {conf.state_path}')
        self.store = store_mod.open_store(conf.state_path)
        # -- issue 14 item 8: a store that lost this node's claims stops the
        # start here, before the first full report could erase them.
        from nova_rt.compute import recovery
        startup.phase('checking the local state store (placement is asked '
                      'if it does not know this node)')
        recovery.check_at_start(conf, self.store, start_placement,
                                sleep=startup.sleep)
        # -- end of the local store check
        if self._own_transport:
            # After the store check, which has its own bound (a new host
            # with RabbitMQ away is refused); from here on a call would wait
            # for the broker inside oslo.messaging, for ever.
            daemon.wait_for_broker(conf, startup)
        startup.phase('connecting to libvirt')
        self._build_sources()
        try:
            if hasattr(self._host_source, 'wait_for_connection'):
                self._host_source.wait_for_connection(max_attempts=1)
        except Exception:
            LOG.exception('libvirt: first connection attempt failed; retrying '
                          'in the background')
        if hasattr(self._host_source, 'check_disk_pool'):
            self._host_source.check_disk_pool()
        startup.phase('loading claims and discovering PCI devices')
        self.reporter = reporter_mod.PlacementReporter(
            start_placement, self.store, self.host,
            report_pci=conf.pci.report_in_placement,
            full_refresh_interval=conf.compute.resource_provider_association_refresh)
        last_ratios = self.store.get_meta(reporter_mod.RATIOS_KEY)
        self.tracker = tracker_mod.ResourceTracker(
            tracker_mod.TrackerConfig.from_conf(conf, last_ratios), self.store,
            host_source=self._host_source, pci_source=self._pci_source)
        self.metrics.watch_commits(self.tracker.commits)
        self.tracker.load()          # claims, last inventory, PCI discovery
        self._start_events()
        startup.phase('reading allocation ratios from placement')
        self._settle_ratios()
        startup.phase('first audit and report to placement')
        self.audit()                 # first audit and first report
        self.reporter.placement = self._placement
        startup.phase('starting the RPC server')
        self.notifier = notifications.ComputeNotifier.from_conf(conf, self.host)
        self.manager = manager_mod.ComputeManager(
            self.tracker, on_change=self.report_soon, run_audit=self.audit_now,
            notifier=self.notifier, metrics=self.metrics.rpc,
            identity=identity_config.guard(
                conf, 'compute', topic=rpc.COMPUTE_TOPIC, server=self.host))
        self.rpc_server = rpc.get_server(
            conf, self._transport, rpc.compute_target(self.host), [self.manager])
        self.metrics.rpc.watch(self.rpc_server)
        self.rpc_server.start()
        self._spawn(self._audit_loop, 'audit-loop')
        self._spawn(self._heartbeat_loop, 'heartbeat')
        frozen = gcutil.freeze_startup_objects()
        LOG.debug('%d start-up objects exempted from garbage collection',
                  frozen)
        LOG.info('nova-rt-compute %s ready in %.2fs (root provider %s)',
                 self.host, time.monotonic() - started, self.reporter.root_uuid)

    def _start_events(self):
        # Both sources call back from native threads; the hand-off makes the
        # calls in this daemon's own threads, which under eventlet is what
        # lets a green audit loop wake at once and take green locks at all.
        from nova_rt.virt import events
        handoff = events.handoff()
        try:
            self._host_source.start_events(self._on_lifecycle_event,
                                           on_connect=self._on_hypervisor_back)
        except Exception:
            LOG.exception('libvirt events unavailable; the periodic audit '
                          'still runs')
        if self._pci_monitor is not None:
            pci_event = self.tracker.pci_event
            rediscovery = self._pci_rediscovery

            def on_uevent(*event):
                if rediscovery is not None:
                    rediscovery.changed()      # before the audit it brings
                handoff.call(pci_event, *event)

            try:
                self._pci_monitor.start(on_uevent)
                if rediscovery is not None:
                    # What changed between the discovery at load and now.
                    rediscovery.changed()
            except Exception:
                LOG.exception('udev monitor unavailable; PCI hotplug is seen '
                              'at the next periodic audit')

    def status(self) -> str:
        """One line for systemd's STATUS."""
        if self.reporter is None:
            return f'nova-rt-compute {self.host}: starting'
        if self.reporter.unreachable:
            placement = 'placement unreachable, report pending'
        elif self.reporter.pending:
            placement = 'report pending'
        else:
            placement = 'placement up to date'
        audit = self.last_audit or {}
        at = (f'{self._last_audit_at:%H:%M:%S} UTC' if self._last_audit_at
              else 'none yet')
        return (f'serving host {self.host}: {audit.get("instances", 0)} '
                f'instances; last audit {at}; {placement}')

    def watchdog_probes(self, limit: Optional[float]) -> dict:
        """What must make progress for systemd to hear WATCHDOG=1."""
        self._audit_progress.limit = limit
        probes = {'audit loop': self._audit_progress}
        pool = systemd.rpc_pool_probe(self.rpc_server, limit)
        if pool is not None:
            probes['RPC worker pool'] = pool
        return probes

    def _on_lifecycle_event(self, event: dict) -> None:
        LOG.debug('libvirt event %s', event)
        self.tracker.audit_wanted.set()

    def _on_hypervisor_back(self) -> None:
        # Whatever happened while libvirt was away (domains started, stopped,
        # resized) was not seen: audit now rather than at the next period.
        LOG.info('libvirt is back; auditing now')
        self.tracker.audit_wanted.set()

    def _ratios_due(self) -> bool:
        interval = self.conf.compute.resource_provider_association_refresh
        return bool(interval) and time.monotonic() - self._ratios_at >= interval

    def _settle_ratios(self) -> None:
        self._ratios_at = time.monotonic()
        ratios = self.reporter.resolve_ratios(ratios_mod.configured(self.conf),
                                              ratios_mod.initial(self.conf))
        self.tracker.set_allocation_ratios(ratios)

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------ audit and report

    def audit(self, periodic: bool = True) -> dict:
        """One audit and the report that follows; the RPC run_audit too.

        ``periodic`` is False for an audit that only lifecycle or udev
        events brought forward (see ``ResourceTracker.run_audit``).
        """
        with self._audit_lock:
            if self._reload_wanted:
                self._apply_reload()
            elif self._ratios_due():
                # Placement's ratio may have been changed by an operator;
                # Nova re-reads it on each full refresh.
                self._settle_ratios()
            with self.metrics.audit():
                summary = self.tracker.run_audit(periodic=periodic)
            summary['reported'] = self.report()
            self.audits += 1
            self.last_audit = summary
            self._last_audit_at = datetime.datetime.now(datetime.timezone.utc)
        LOG.debug('audit: %s', summary)
        if self.notifier is not None:
            self.notifier.notify({}, 'run_audit', {}, summary)
        return summary

    def audit_now(self, timeout: float = 300) -> dict:
        """RPC ``run_audit``: an audit that starts after this call, run by
        the audit thread, so that audits never overlap."""
        done = threading.Event()
        waiter = {'done': done}
        with self._waiters_lock:
            self._audit_waiters.append(waiter)
        self.tracker.audit_wanted.set()
        if not done.wait(timeout):
            raise TimeoutError('the audit did not finish in time')
        if 'error' in waiter:
            raise waiter['error']
        return dict(waiter['summary'])

    def report(self, force_full: bool = False) -> bool:
        with self._report_lock:
            self._report_at = None
            version, view = self.tracker.placement_view()
            lag = self.metrics.report_lag
            if version != self.reporter.sent_version:
                lag.changed()
            elif not self.reporter.pending:
                lag.nothing_new()
            sent = self.reporter.report(version, view, force_full=force_full)
            if not self.reporter.pending:
                lag.acknowledged()
            if self.reporter.pending:
                self._report_at = time.monotonic() + self.reporter.retry_delay(
                    min(REPORT_RETRY, self.conf.heartbeat_interval))
            return sent

    def report_soon(self) -> None:
        """A claim changed usage: report within REPORT_DELAY, coalesced."""
        self.metrics.report_lag.changed()
        if self._report_at is None:
            self._report_at = time.monotonic() + REPORT_DELAY

    def _audit_loop(self):
        next_audit = time.monotonic() + self.conf.update_resources_interval
        wanted = self.tracker.audit_wanted
        while not self._stopping.is_set():
            self._audit_progress.beat()
            now = time.monotonic()
            deadlines = [next_audit]
            if self._report_at is not None:
                deadlines.append(self._report_at)
            # Claims set _report_at without waking this thread, so never
            # sleep longer than REPORT_DELAY.
            woken = wanted.wait(min(max(0.0, min(deadlines) - now), REPORT_DELAY))
            if self._stopping.is_set():
                break
            now = time.monotonic()
            if woken or now >= next_audit:
                wanted.clear()
                # Callers waiting now get this audit; later ones the next.
                with self._waiters_lock:
                    waiters, self._audit_waiters = self._audit_waiters, []
                # The RPC run_audit is "the periodic audit now" (contract).
                periodic = now >= next_audit or bool(waiters)
                try:
                    summary = self.audit(periodic=periodic)
                except Exception as exc:
                    # One bad audit must not end auditing for good.
                    LOG.exception('audit failed; next one in %ss',
                                  self.conf.update_resources_interval)
                    for waiter in waiters:
                        waiter['error'] = exc
                else:
                    for waiter in waiters:
                        waiter['summary'] = summary
                finally:
                    for waiter in waiters:
                        waiter['done'].set()
                next_audit = time.monotonic() + self.conf.update_resources_interval
            elif self._report_at is not None and now >= self._report_at:
                try:
                    self.report()
                except Exception:
                    LOG.exception('report to placement failed')

    def _heartbeat_loop(self):
        while not self._stopping.wait(self.conf.heartbeat_interval):
            self.reporter.heartbeat()

    # ------------------------------------------------------------ SIGHUP

    def reset(self):
        """Options were re-read (SIGHUP): apply them at the next audit."""
        self._reload_wanted = True
        if self.tracker is not None:
            self.tracker.audit_wanted.set()

    def _apply_reload(self) -> None:
        self._reload_wanted = False
        conf = self.conf
        self.reporter.full_refresh_interval = \
            conf.compute.resource_provider_association_refresh
        ratios = self.reporter.resolve_ratios(ratios_mod.configured(conf),
                                              ratios_mod.initial(conf))
        try:
            config = tracker_mod.TrackerConfig.from_conf(conf, ratios)
        except Exception as exc:
            LOG.error('Reloaded configuration refused, keeping the old one: '
                      '%s', exc)
            return
        self.tracker.apply_config(config)
        LOG.info('Configuration reloaded: allocation ratios %s, reserved '
                 'memory %s MiB, disk %s MiB, cpus %s, audit every %ss',
                 ratios, config.reserved_host_memory_mb,
                 config.reserved_host_disk_mb, config.reserved_host_cpus,
                 conf.update_resources_interval)

    # ------------------------------------------------------------ stop

    def stop(self, graceful: bool = True):
        if self._stopping.is_set():
            return
        LOG.info('Stopping: no new calls, finishing those in flight')
        if self.rpc_server is not None:
            self.rpc_server.stop()
            self.rpc_server.wait()
        self._stopping.set()
        if self.tracker is not None:
            self.tracker.audit_wanted.set()
        for thread in self._threads:
            if thread.name == 'audit-loop':
                thread.join(timeout=30)
        self._flush()
        for closer in (getattr(self._pci_monitor, 'stop', None),
                       getattr(self._host_source, 'stop', None),
                       getattr(self.notifier, 'stop', None)):
            if closer is not None:
                try:
                    closer()
                except Exception:
                    LOG.debug('error while closing', exc_info=True)
        if self.store is not None:
            self.store.close()
        if self._own_transport:
            self._transport.cleanup()
        self._stopped.set()
        LOG.info('Stopped')

    def _flush(self) -> None:
        """Last report before exit, bounded: claims are safe in the store."""
        if self.rpc_server is None:
            return      # start-up cancelled: no claim was taken
        if self.reporter is None or self.tracker is None:
            return
        version, _ = self.tracker.placement_view()
        if not self.reporter.pending and version == self.reporter.sent_version:
            return
        if self.reporter.unreachable:
            LOG.info('Placement unreachable: the last report waits for the '
                     'next start (claims are in the local store)')
            return
        placement = self.reporter.placement
        try:
            self.reporter.placement = self._placement_client(FLUSH_TIMEOUT)
        except Exception:
            pass
        try:
            self.report()
        finally:
            self.reporter.placement = placement

    def wait(self):
        self._stopped.wait()


def run(conf, service: ComputeService) -> int:
    """Run ``service`` in this process until SIGTERM/SIGINT (``daemon.run``);
    return the exit code."""
    return daemon.run(conf, service, 'nova-rt-compute')
