"""Running a daemon in this process: start-up, signals, systemd, reports.

Why not ``oslo_service.service.launch``: with the threading backend and
``no_fork`` its SIGHUP handler raises ``SignalExit`` and resets every handler
to the default, so a second signal kills the daemon; without ``no_fork`` the
service runs in a cotyledon child process, whose notify messages a
``NotifyAccess=main`` unit drops.  Here both services and both backends get
the same in-process behaviour.

The service starts in a thread of its own while the main thread waits for
signals, so that SIGTERM is honoured in every phase of start-up: waiting for
RabbitMQ, for placement or for libvirt.  Nothing is served before
``READY=1``, and every claim is durable, so a start-up given up loses
nothing.  A service's ``start`` calls ``StartUp.phase`` between its steps;
a cancelled start-up raises ``StartCancelled`` there, and one blocked in a
call that cannot be interrupted is left behind after ``CANCEL_GRACE``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable, Optional

from nova_rt import systemd

LOG = logging.getLogger(__name__)

#: How long a cancelled start-up may take to reach its next phase before
#: the process exits without it.
CANCEL_GRACE = 2.0
#: Broker probe: first retry, doubling up to the cap.
BROKER_RETRY_FIRST = 1.0
BROKER_RETRY_MAX = 30.0
BROKER_CONNECT_TIMEOUT = 5.0


class StartCancelled(Exception):
    """SIGTERM arrived during start-up."""


class StartUp:
    """What a service's ``start`` is doing, and whether to go on."""

    def __init__(self, notifier: systemd.Notifier):
        self.notifier = notifier
        self.cancelled = threading.Event()
        self.doing = 'starting'

    def phase(self, doing: str) -> None:
        """Enter the next step of start-up (shown as systemd's STATUS)."""
        self.check()
        self.doing = doing
        LOG.info('Start-up: %s', doing)
        self.notifier.status(doing)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise StartCancelled(self.doing)

    def sleep(self, seconds: float) -> None:
        """A retry's pause, cut short by SIGTERM."""
        if self.cancelled.wait(seconds):
            raise StartCancelled(self.doing)


def backoff(first: float, cap: float):
    """1, 2, 4 ... capped: the pauses between retries."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


def broker_problem(conf, url: Optional[str],
                   timeout: float = BROKER_CONNECT_TIMEOUT) -> Optional[str]:
    """Why RabbitMQ at ``url`` cannot be used now; None when it can.

    One bounded connection per host of the URL: oslo.messaging itself retries
    a broker that is away for ever, inside whatever call found it away.
    """
    import kombu
    import oslo_messaging as messaging
    parsed = messaging.TransportURL.parse(conf, url)
    if parsed.transport not in ('rabbit', None) or not parsed.hosts:
        return None
    problem = 'no host in the transport URL'
    tls = _tls_options(conf.oslo_messaging_rabbit, parsed)
    for host in parsed.hosts:
        connection = kombu.Connection(
            hostname=host.hostname, port=host.port or 5672,
            userid=host.username or 'guest', password=host.password or 'guest',
            virtual_host=parsed.virtual_host or '/',
            ssl=tls, connect_timeout=timeout)
        try:
            connection.connect()
            return None
        except Exception as exc:   # socket, TLS and AMQP errors alike
            problem = ' '.join(str(exc).split()) or type(exc).__name__
        finally:
            connection.release()
    return problem


def _tls_options(rabbit, parsed):
    """TLS as oslo.messaging's rabbit driver will make it (its
    ``_fetch_ssl_params``), so that the probe trusts the CA and shows the
    client certificate the services will: a bare ``ssl=True`` checked the
    broker against the system's CAs, and a broker of a private CA failed the
    probe while the real connection would have worked."""
    import ssl
    if not rabbit.ssl:
        return False
    tls = {}
    if rabbit.ssl_cert_file:
        tls['certfile'] = rabbit.ssl_cert_file
    if rabbit.ssl_key_file:
        tls['keyfile'] = rabbit.ssl_key_file
    if rabbit.ssl_ca_file:
        tls['ca_certs'] = rabbit.ssl_ca_file
        tls['cert_reqs'] = ssl.CERT_REQUIRED
        # The name is checked when there is one broker, as the driver does.
        if len(parsed.hosts) == 1:
            tls['server_hostname'] = parsed.hosts[0].hostname
    return tls or True


def wait_for_broker(conf, startup: StartUp) -> None:
    """Until RabbitMQ answers, retrying with back-off; SIGTERM ends it."""
    from nova_rt import log as nova_log
    url = conf.transport_url
    shown = nova_log.mask_secrets(str(url or 'the default transport'))
    startup.phase(f'connecting to the message bus at {shown}')
    for attempt, pause in enumerate(
            backoff(BROKER_RETRY_FIRST, BROKER_RETRY_MAX), start=1):
        problem = broker_problem(conf, url)
        if problem is None:
            return
        LOG.warning('Message bus at %s unreachable (attempt %d: %s); '
                    'trying again in %.0fs', shown, attempt, problem, pause)
        startup.notifier.status(f'waiting for the message bus at {shown} '
                                f'(attempt {attempt}: {problem})')
        startup.sleep(pause)


def enable_reports(conf, prog: str) -> None:
    """Guru Meditation Report on SIGUSR2 (oslo.reports): thread stacks,
    configuration and package, written to stderr or ``[oslo_reports]
    log_dir``.  ``[oslo_reports]`` must be registered before parsing
    (``register_report_opts``)."""
    from oslo_reports import guru_meditation_report as gmr
    gmr.TextGuruMeditation.setup_autorun(_Version(), service_name=prog,
                                         conf=conf)


def register_report_opts(conf) -> None:
    from oslo_reports import opts as gmr_opts
    gmr_opts.set_defaults(conf)


class _Version:
    """What oslo.reports prints under "Package"."""

    @staticmethod
    def vendor_string() -> str:
        return 'nova_rt'

    @staticmethod
    def product_string() -> str:
        return 'nova_rt'

    @staticmethod
    def version_string_with_package() -> str:
        from importlib import metadata
        try:
            return metadata.version('nova_rt')
        except metadata.PackageNotFoundError:
            return 'unknown'


def _exit_now(code: int) -> None:
    # A start-up thread blocked in a C call (a TCP connect, libvirt) would
    # hold interpreter shutdown; everything durable is already on disk.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(conf, service, name: str,
        notifier: Optional[systemd.Notifier] = None,
        exit_now: Callable[[int], None] = _exit_now) -> int:
    """Run ``service`` until SIGTERM/SIGINT; return the exit code.

    ``service`` has ``start(startup)``, ``stop()``, ``reset()``,
    ``status()`` (one line for systemd) and ``watchdog_probes(limit)``;
    its ``metrics.registry``, if it has one, is served on ``/metrics`` while
    it runs when ``[metrics] enabled`` is set.
    An exception from ``start`` propagates (the caller prints it).
    """
    notifier = notifier or systemd.Notifier()
    endpoint = _metrics_endpoint(conf, service, name)
    if endpoint is not None:
        try:
            # Before start-up: a port in use stops the service now, and
            # Prometheus sees a daemon that is still starting.
            endpoint.start()
        except Exception as error:
            notifier.stopping(f'failed to start: {error}')
            raise
    try:
        return _run(conf, service, notifier, exit_now)
    finally:
        if endpoint is not None:
            endpoint.stop()


def _metrics_endpoint(conf, service, name: str):
    registry = getattr(getattr(service, 'metrics', None), 'registry', None)
    if registry is None or 'metrics' not in conf:
        return None
    from nova_rt import metrics
    # 'nova-rt-compute' -> 'compute': each has its own default port.
    return metrics.endpoint_for(conf, name.rsplit('-', 1)[-1], registry)


def _run(conf, service, notifier: systemd.Notifier, exit_now) -> int:
    startup = StartUp(notifier)
    requests: list = []
    wake = threading.Event()

    def _on_signal(signo, _frame):
        requests.append(signo)
        wake.set()

    for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signo, _on_signal)
    outcome: dict = {}

    def _start():
        try:
            service.start(startup)
        except BaseException as exc:
            outcome['error'] = exc
        finally:
            wake.set()

    starting = threading.Thread(target=_start, name='start-up', daemon=True)
    starting.start()
    watchdog = None
    while True:
        wake.wait(1.0)
        wake.clear()
        if watchdog is None and not starting.is_alive():
            error = outcome.get('error')
            if isinstance(error, StartCancelled):
                pass     # SIGTERM is in requests; handled below
            elif error is not None:
                notifier.stopping(f'failed to start: {error}')
                raise error
            else:
                notifier.ready(service.status())
                watchdog = systemd.Watchdog(
                    notifier, service.watchdog_probes, service.status)
                watchdog.start()
        while requests:
            signo = requests.pop(0)
            if signo == signal.SIGHUP:
                LOG.info('SIGHUP: reloading mutable options')
                try:
                    conf.mutate_config_files()
                except Exception:
                    LOG.exception('SIGHUP: could not re-read the configuration')
                    continue
                service.reset()
                continue
            signame = signal.Signals(signo).name
            if watchdog is None:
                return _cancel_start(service, startup, starting, signame,
                                     exit_now)
            LOG.info('%s: stopping', signame)
            notifier.stopping(f'stopping ({signame})')
            watchdog.stop()
            _stop_within(service,
                         getattr(conf, 'graceful_shutdown_timeout', 60) or 60,
                         exit_now)
            return 0


def _cancel_start(service, startup: StartUp, starting: threading.Thread,
                  signame: str, exit_now) -> int:
    doing = startup.doing
    LOG.info('%s during start-up (%s): stopping', signame, doing)
    startup.notifier.stopping(f'stopping ({signame} while {doing})')
    startup.cancelled.set()
    starting.join(CANCEL_GRACE)
    if starting.is_alive():
        LOG.warning('Start-up still busy %s after %.0fs; exiting without '
                    'it (nothing was served yet)', doing, CANCEL_GRACE)
        exit_now(0)
        return 0       # (only when exit_now returns, in tests)
    _stop_within(service, CANCEL_GRACE, exit_now)
    return 0


def _stop_within(service, seconds: float, exit_now) -> None:
    # Past the bound, leave anyway: every claim is already durable.
    timer = threading.Timer(seconds, exit_now, args=(1,))
    timer.daemon = True
    timer.start()
    try:
        service.stop()
    finally:
        timer.cancel()
