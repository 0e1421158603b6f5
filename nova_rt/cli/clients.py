"""The CLI's RPC clients: the project's own, with fast, plain failures.

A person at a terminal should not wait for a timeout to learn that nothing
serves a host.  Calls are published with the AMQP ``mandatory`` flag
(oslo.messaging's ``at_least_once``), so RabbitMQ hands back at once a call
that no queue takes, and the broker connection is retried only briefly.
Every failure becomes one ``CliError`` line naming what did not answer.
"""

from __future__ import annotations

import uuid

import oslo_messaging as messaging

from nova_rt import exception
from nova_rt import log as nova_log
from nova_rt.compute import rpcapi as compute_rpcapi
from nova_rt.placement import rpcapi as placement_rpcapi

#: Broker connection attempts per call before giving up.
CONNECT_RETRIES = 2


class CliError(Exception):
    """One line for the operator; ``exc_type`` is the contract's class name
    when the error came from a service."""

    def __init__(self, message: str, exc_type: str | None = None):
        super().__init__(message)
        self.exc_type = exc_type

    def line(self) -> str:
        prefix = f'{self.exc_type}: ' if self.exc_type else ''
        return f'ERROR: {prefix}{self}'


def remote_error(exc: Exception) -> CliError | None:
    """A service's refusal as ``CliError``; None if ``exc`` is not one."""
    if isinstance(exc, exception.NovaRtException):
        name = type(exc).__name__.removesuffix('_Remote')
        # A rebuilt remote exception's str() carries the remote traceback.
        return CliError(_one_line(exc.message.split('\nTraceback')[0]), name)
    if isinstance(exc, messaging.RemoteError):
        return CliError(_one_line(str(exc.value or '')), exc.exc_type)
    return None


def _one_line(text: str) -> str:
    return ' '.join(text.split())


class _Guarded:
    """Forwards to an RPC client; turns messaging failures into CliError."""

    def __init__(self, api, service: str, url: str, exchange: str,
                 timeout: float, server_arg: bool):
        self._api = api
        self._service = service
        self._url = nova_log.mask_secrets(url or '')
        self._exchange = exchange
        self._timeout = timeout
        self._server_arg = server_arg

    def _who(self, args) -> str:
        if self._server_arg and args:
            return f'{self._service} on host {args[1]}'
        return self._service

    def __getattr__(self, name):
        method = getattr(self._api, name)

        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except messaging.MessageUndeliverable:
                if self._server_arg:
                    raise CliError(f'no {self._service} is serving host '
                                   f'{args[1]} (exchange {self._exchange})') from None
                raise CliError(f'no {self._service} is serving '
                               f'(exchange {self._exchange})') from None
            except messaging.MessagingTimeout:
                raise CliError(f'{self._who(args)} did not answer within '
                               f'{self._timeout:g}s (--timeout)') from None
            except messaging.MessageDeliveryFailure:
                raise CliError(f'cannot reach the message bus at {self._url}') from None
            except (exception.NovaRtException, messaging.RemoteError) as exc:
                raise remote_error(exc) from None
        return call


def probe_broker(conf, url: str | None, timeout: float) -> None:
    """Connect to RabbitMQ once, so that a broker that is down or refuses us
    is one error line: oslo.messaging itself would retry for ever."""
    from nova_rt import daemon
    problem = daemon.broker_problem(conf, url, min(timeout, 10))
    if problem is not None:
        shown = url or str(messaging.TransportURL.parse(conf, url))
        raise CliError(f'cannot use the message bus at '
                       f'{nova_log.mask_secrets(shown)}: {problem}')


def _fail_fast(api):
    # The client is the project's own; only how it publishes changes here.
    api.client = api.client.prepare(
        transport_options=messaging.TransportOptions(at_least_once=True),
        retry=CONNECT_RETRIES)
    return api


class Clients:
    """``compute`` (ComputeAPI) and ``placement`` (PlacementAPI), made on
    first use so that ``--help`` and usage errors need no broker."""

    def __init__(self, conf, transport_url: str | None, timeout: float,
                 service: str = 'cli'):
        self._conf = conf
        self._url = transport_url
        self.timeout = timeout
        self._service = service     # whose [identity] principal signs
        self._transport = None
        self._compute = None
        self._placement = None
        self._caller = None

    def _identity(self):
        """Who signs this process's calls (``[identity]``)."""
        if self._caller is None:
            from nova_rt.identity import config as identity_config
            try:
                identity_config.check(self._conf, self._service)
            except exception.ConfigError as exc:
                raise CliError(str(exc)) from None
            self._caller = identity_config.caller(self._conf, self._service)
        return self._caller

    def _get_transport(self):
        if self._transport is None:
            try:
                self._transport = messaging.get_rpc_transport(
                    self._conf, url=self._url,
                    allowed_remote_exmods=compute_rpcapi.ALLOWED_REMOTE_EXMODS)
            except messaging.InvalidTransportURL as exc:
                raise CliError(f'invalid transport URL: '
                               f'{nova_log.mask_secrets(str(exc))}') from None
            probe_broker(self._conf, self._url or self._conf.transport_url,
                         self.timeout)
        return self._transport

    def _shown_url(self) -> str:
        return self._url or str(self._conf.transport_url or '')

    @property
    def compute(self):
        if self._compute is None:
            api = compute_rpcapi.ComputeAPI(
                self._get_transport(), timeout=self.timeout,
                identity=self._identity(),
                version_cap=self._conf.upgrade_levels.compute)
            self._compute = _Guarded(_fail_fast(api), 'nova-rt-compute',
                                     self._shown_url(), self._conf.control_exchange,
                                     self.timeout, server_arg=True)
        return self._compute

    @property
    def placement(self):
        if self._placement is None:
            api = placement_rpcapi.PlacementAPI(
                self._get_transport(), timeout=self.timeout,
                identity=self._identity(),
                version_cap=self._conf.upgrade_levels.placement)
            self._placement = _Guarded(_fail_fast(api), 'nova-rt-placement',
                                       self._shown_url(), self._conf.control_exchange,
                                       self.timeout, server_arg=False)
        return self._placement

    def context(self) -> dict:
        return {'request_id': f'req-{uuid.uuid4()}', 'user_id': 'nova-rt-cli',
                'project_id': 'nova-rt-cli'}

    def close(self) -> None:
        if self._transport is not None:
            self._transport.cleanup()
            self._transport = None

