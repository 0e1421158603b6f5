"""[metrics]: the Prometheus endpoint of both services (``nova_rt.metrics``).

One ``port`` option read by each service, unset by default: each service
then takes a port of its own (``DEFAULT_PORTS``), so that a compute host
that also runs placement needs no setting to serve both.
"""

from oslo_config import cfg

metrics_group = cfg.OptGroup(
    'metrics', title='Prometheus metrics',
    help='An HTTP endpoint, /metrics, in the Prometheus text format: RPC '
         'call latency, calls in flight and queued, audit duration, report '
         'lag and more (doc/source/operations.rst, "Metrics").')

#: The port each service listens on when ``[metrics] port`` is unset.
DEFAULT_PORTS = {'compute': 9738, 'placement': 9739}

metrics_opts = [
    cfg.BoolOpt(
        'enabled', default=False,
        help='Serve /metrics over HTTP on bind_host:port. Off by default: '
             'the endpoint has no authentication, so bind it to an address '
             'only the Prometheus server can reach.'),
    cfg.HostAddressOpt(
        'bind_host', default='127.0.0.1',
        help='Address the metrics endpoint listens on.'),
    cfg.PortOpt(
        'port', min=1,
        help='TCP port of the metrics endpoint. Unset: '
             f'{DEFAULT_PORTS["compute"]} for nova-rt-compute, '
             f'{DEFAULT_PORTS["placement"]} for nova-rt-placement. A port '
             'already in use stops the service at start.'),
]


def port(conf, service: str) -> int:
    """The port ``service`` ('compute' or 'placement') listens on."""
    return conf.metrics.port or DEFAULT_PORTS[service]


def register_opts(conf):
    conf.register_group(metrics_group)
    conf.register_opts(metrics_opts, group=metrics_group)


def list_opts():
    return {metrics_group: metrics_opts}
