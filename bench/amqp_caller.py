"""A lean load generator for an oslo.messaging RPC server: many calls in
flight from one thread, on one AMQP connection, in oslo.messaging's wire
format.

Why: on a 2-core machine the simulated hosts, RabbitMQ and PostgreSQL share
the cores with the server under test.  oslo.messaging's own client spends
about 0.7 ms of CPU per call (a reply-waiter thread, connection pool,
publisher confirms), so a benchmark driving the server through it measures
the callers as much as the server.  This caller costs a fraction of that, so
that what saturates is the server; the benchmark reports both.

Wire format (oslo.messaging 14-18, rabbit driver; checked by every call,
whose reply must come back): a call is published to the topic exchange named
``control_exchange`` with the topic as routing key, body ``{"oslo.version":
"2.0", "oslo.message": json({"method", "args", "version", "_msg_id",
"_reply_q", "_timeout", "_unique_id", "_context_<key>"...})}``; the server
replies to the default exchange with ``_reply_q`` as routing key, body the
same envelope around ``{"result", "failure", "ending", "_msg_id"}``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid

import amqp


class RemoteError(Exception):
    """The server answered with a failure (its class name first)."""


class Caller:
    """``Caller(transport_url, exchange, topic, version)``; ``call(method,
    kwargs, on_reply)`` sends without waiting; ``on_reply(result, error)``
    runs from ``wait()``."""

    def __init__(self, transport_url: str, exchange: str, topic: str,
                 version: str, context: dict | None = None):
        url = urllib.parse.urlsplit(transport_url)
        self.conn = amqp.Connection(
            host=f'{url.hostname}:{url.port or 5672}',
            userid=urllib.parse.unquote(url.username or 'guest'),
            password=urllib.parse.unquote(url.password or 'guest'),
            virtual_host=urllib.parse.unquote(url.path[1:]) or '/')
        self.conn.connect()
        self.channel = self.conn.channel()
        self.exchange, self.topic, self.version = exchange, topic, version
        self.context = {f'_context_{k}': v for k, v in (context or {}).items()}
        self.reply_q = f'reply_{uuid.uuid4().hex}'
        self.channel.queue_declare(self.reply_q, exclusive=True,
                                   auto_delete=True)
        self.channel.basic_consume(self.reply_q, no_ack=True,
                                   callback=self._on_message)
        self.pending: dict = {}

    def call(self, method: str, kwargs: dict, on_reply) -> None:
        msg_id = uuid.uuid4().hex
        body = {'method': method, 'args': kwargs, 'version': self.version,
                '_msg_id': msg_id, '_reply_q': self.reply_q,
                '_timeout': None, '_unique_id': uuid.uuid4().hex,
                **self.context}
        self.pending[msg_id] = on_reply
        self._publish(body)

    def cast(self, method: str, kwargs: dict) -> None:
        """No reply expected (as the reporter's heartbeat)."""
        self._publish({'method': method, 'args': kwargs,
                       'version': self.version,
                       '_unique_id': uuid.uuid4().hex, **self.context})

    def _publish(self, body: dict) -> None:
        self.channel.basic_publish(
            amqp.Message(json.dumps({'oslo.version': '2.0',
                                    'oslo.message': json.dumps(body)}),
                         content_type='application/json',
                         content_encoding='utf-8'),
            exchange=self.exchange, routing_key=self.topic)

    def _on_message(self, message) -> None:
        reply = json.loads(json.loads(message.body)['oslo.message'])
        on_reply = self.pending.pop(reply['_msg_id'], None)
        if on_reply is None:
            return
        failure = reply.get('failure')
        error = None
        if failure:
            failure = json.loads(failure) if isinstance(failure, str) \
                else failure
            error = RemoteError(f"{failure.get('class')}: "
                                f"{failure.get('message')}")
        on_reply(reply.get('result'), error)

    def wait(self, timeout: float = 30.0) -> None:
        """Process replies until none is pending or ``timeout`` passes with
        no reply at all."""
        deadline = time.monotonic() + timeout
        while self.pending:
            try:
                self.conn.drain_events(timeout=0.5)
                deadline = time.monotonic() + timeout
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{len(self.pending)} calls had no '
                                       'reply') from None

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
