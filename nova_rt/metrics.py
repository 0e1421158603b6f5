"""Prometheus metrics of both daemons, and the ``/metrics`` endpoint.

Each service owns one registry (no process-wide one), so that a test may run
several services in one process and each shows only its own figures.  The
metrics are always kept (an observation costs about a microsecond); only the
HTTP endpoint is optional (``[metrics] enabled``).  The adapters call the
small helpers here; the pure core knows nothing of metrics.

"Queue depth" here is what the daemon itself can see: calls taken from the
broker and waiting for a worker thread (``*_rpc_calls_queued``) and calls
being served (``*_rpc_calls_in_flight``).  Messages still in RabbitMQ's queue
are the broker's to tell (its management or Prometheus plugin).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
import time
from typing import Callable, Optional

import prometheus_client as prom
from prometheus_client import core as prom_core
from prometheus_client import exposition

from nova_rt import exception

#: RPC calls: a claim is a few milliseconds, a call behind a busy audit or
#: a slow database tens to hundreds.
CALL_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1.0, 2.5,
                5.0, 10.0, 30.0)
#: An audit walks every domain: tens of milliseconds to minutes.
AUDIT_BUCKETS = (.01, .025, .05, .1, .25, .5, 1.0, 2.5, 5.0, 10.0, 30.0,
                 60.0, 120.0, 300.0)
#: A claim is reported within REPORT_DELAY (1 s); longer means retries.
LAG_BUCKETS = (.1, .25, .5, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
               300.0, 900.0)


def error_class(exc: BaseException) -> str:
    """The contract's name of the error a call ended with."""
    # The compute endpoint answers a refusal with ExpectedException, which
    # carries the refusal it was raised for.
    wrapped = getattr(exc, 'exc_info', None)
    if wrapped and isinstance(wrapped[1], BaseException):
        exc = wrapped[1]
    return type(exc).__name__


@contextlib.contextmanager
def _timed(observe: Callable[[float], None],
           failed: Callable[[BaseException], None]):
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        failed(exc)
        raise
    finally:
        observe(time.perf_counter() - started)


class RpcMetrics:
    """What both RPC servers show: latency by method, errors by method and
    class, calls in flight, calls waiting for a worker."""

    def __init__(self, service: str,
                 registry: Optional[prom.CollectorRegistry] = None):
        registry = self.registry = registry or prom.CollectorRegistry()
        prefix = f'nova_rt_{service}'
        self.seconds = prom.Histogram(
            f'{prefix}_rpc_call_seconds',
            'Time to serve an RPC call, from dispatch to the answer',
            ['method'], registry=registry, buckets=CALL_BUCKETS)
        self.errors = prom.Counter(
            f'{prefix}_rpc_errors',
            'RPC calls answered with an error, by the error class of the '
            'contract', ['method', 'error'], registry=registry)
        self.in_flight = prom.Gauge(
            f'{prefix}_rpc_calls_in_flight', 'RPC calls being served now',
            registry=registry)
        self.queued = prom.Gauge(
            f'{prefix}_rpc_calls_queued',
            'RPC calls taken from the broker and waiting for a worker thread',
            registry=registry)
        self._server = None
        self.queued.set_function(self._queued)

    def watch(self, server) -> None:
        """Count the calls waiting in ``server``'s worker pool (an
        oslo.messaging RPC server; its pool exists once it is started)."""
        self._server = server

    def _queued(self) -> float:
        executor = getattr(self._server, '_work_executor', None)
        if executor is None:
            return 0.0
        size = getattr(executor, 'queue_size', None)      # futurist threads
        if size is None:                                  # green threads
            delayed = getattr(executor, '_delayed_work', None)
            size = delayed.qsize() if delayed is not None else 0
        return float(size)

    @contextlib.contextmanager
    def call(self, method: str):
        with self.in_flight.track_inprogress(), _timed(
                self.seconds.labels(method).observe,
                lambda exc: self.errors.labels(method, error_class(exc)).inc()):
            yield


class ReportLag:
    """From the first change placement has not heard of to the report that
    placement acknowledged, retries and outages included."""

    def __init__(self, histogram: prom.Histogram,
                 clock: Callable[[], float] = time.monotonic):
        self.histogram = histogram
        self.clock = clock
        self._since: Optional[float] = None

    def changed(self) -> None:
        if self._since is None:
            self._since = self.clock()

    def nothing_new(self) -> None:
        """The change turned out to be none placement needs to hear of."""
        self._since = None

    def acknowledged(self) -> None:
        if self._since is not None:
            self.histogram.observe(self.clock() - self._since)
            self._since = None


class ComputeMetrics:
    def __init__(self):
        self.registry = prom.CollectorRegistry()
        self.rpc = RpcMetrics('compute', self.registry)
        self.audit_seconds = prom.Histogram(
            'nova_rt_compute_audit_seconds',
            'Duration of an audit (libvirt, udev and the new view; not the '
            'report that follows)', registry=self.registry,
            buckets=AUDIT_BUCKETS)
        self.audit_failures = prom.Counter(
            'nova_rt_compute_audit_failures', 'Audits that failed',
            registry=self.registry)
        self.report_lag = ReportLag(prom.Histogram(
            'nova_rt_compute_report_lag_seconds',
            'From a change of the node\'s usage or inventory to placement '
            'acknowledging the report of it', registry=self.registry,
            buckets=LAG_BUCKETS))
        self.placement_unreachable = prom.Gauge(
            'nova_rt_compute_placement_unreachable',
            '1 while the last report did not reach placement (it or the '
            'message bus is away), else 0', registry=self.registry)

    def watch_commits(self, commits) -> None:
        """The local store's group commit (``compute.groupcommit``): its
        counts read at each scrape, so the claim path pays nothing."""
        self.registry.register(_CommitCollector(commits))

    def audit(self):
        """Times the audit run inside it; counts it failed if it raises."""
        return _timed(self.audit_seconds.observe,
                      lambda _exc: self.audit_failures.inc())


class _CommitCollector:
    """Counters of a ``GroupCommit``, as Prometheus counters."""

    _FAMILIES = (
        ('nova_rt_compute_store_commits', 'commits',
         'Transactions that made ledger writes (claims, aborts, moves, ...) '
         'durable in the local store, one fsync each; writes that arrive '
         'together share one'),
        ('nova_rt_compute_store_writes', 'committed',
         'Ledger writes made durable in the local store'),
        ('nova_rt_compute_store_write_failures', 'failed',
         'Ledger writes refused because their commit failed (a full or '
         'read-only file system), each undone and its caller told'),
    )

    def __init__(self, commits):
        self.commits = commits

    def describe(self):
        return [prom_core.CounterMetricFamily(name, text)
                for name, _attr, text in self._FAMILIES]

    def collect(self):
        for name, attr, text in self._FAMILIES:
            yield prom_core.CounterMetricFamily(
                name, text, value=getattr(self.commits, attr))


class PlacementMetrics:
    def __init__(self):
        self.registry = prom.CollectorRegistry()
        self.rpc = RpcMetrics('placement', self.registry)
        self.heartbeats = prom.Counter(
            'nova_rt_placement_heartbeats',
            'Heartbeats served: accepted, or ignored (not a root provider of '
            'the sending host)', ['result'], registry=self.registry)
        self.db_retries = prom.Counter(
            'nova_rt_placement_db_retries',
            'Database transactions run again after a deadlock, a '
            'serialisation failure or a lost connection', ['method'],
            registry=self.registry)


class Endpoint:
    """``/metrics`` over HTTP, in a thread of its own.

    Under eventlet the server is eventlet's own: the standard library's
    server waits in ``selectors.PollSelector``, which eventlet does not make
    green, so it stopped every green thread of the daemon (start-up hung).
    """

    def __init__(self, registry: prom.CollectorRegistry, host: str, port: int):
        self.registry = registry
        self.host = host
        self.port = port
        self._stop: Optional[Callable[[], None]] = None

    def start(self) -> None:
        """Listen, or raise ``ConfigError`` naming the option at fault."""
        try:
            self._stop = (self._serve_green() if _green()
                          else self._serve_native())
        except socket.gaierror as exc:
            raise exception.ConfigError(
                reason=f'[metrics] bind_host: cannot listen on '
                       f'{self.host!r}: {exc.strerror}') from None
        except OSError as exc:
            option = ('bind_host' if exc.errno == errno.EADDRNOTAVAIL
                      else 'port')
            raise exception.ConfigError(
                reason=f'[metrics] {option}: cannot listen on '
                       f'{self.host}:{self.port}: {exc.strerror}') from None

    def _serve_native(self) -> Callable[[], None]:
        server, _thread = exposition.start_http_server(
            self.port, addr=self.host, registry=self.registry)

        def stop():
            server.shutdown()
            server.server_close()
        return stop

    def _serve_green(self) -> Callable[[], None]:
        import eventlet
        from eventlet import wsgi
        family = socket.getaddrinfo(self.host, self.port,
                                    type=socket.SOCK_STREAM)[0][0]
        sock = eventlet.listen((self.host, self.port), family=family)
        app = exposition.make_wsgi_app(self.registry)
        green = eventlet.spawn(wsgi.server, sock, app, log_output=False)

        def stop():
            green.kill()
            sock.close()
        return stop

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def _green() -> bool:
    # (Not imported here: a process that never imported eventlet is not
    # patched by it.)
    patcher = sys.modules.get('eventlet.patcher')
    return patcher is not None and patcher.is_monkey_patched('thread')


def endpoint_for(conf, service: str, registry) -> Optional[Endpoint]:
    """The endpoint ``[metrics]`` asks for, not yet started; None when off."""
    from nova_rt.conf import metrics as metrics_conf
    if not conf.metrics.enabled:
        return None
    return Endpoint(registry, conf.metrics.bind_host,
                    metrics_conf.port(conf, service))
