"""python-openstackclient plugin: ``openstack rt host list`` and the rest.

Registered by setup.cfg's ``openstack.cli.extension`` (``rt``), with the
commands under ``openstack.rt.v1``: the same classes as ``nova-rt``.  They
need no Keystone (``auth_required`` is False): nova_rt speaks RPC, with the
settings of ``--os-rt-config-file`` (default ``$NOVA_RT_CONFIG_FILE``, else
``/etc/nova_rt/nova-rt.conf``) and ``--os-rt-transport-url``.
"""

from __future__ import annotations

from nova_rt.cli import connect

API_NAME = 'rt'
API_VERSION_OPTION = 'os_rt_api_version'
DEFAULT_API_VERSION = '1'
API_VERSIONS = ('1',)


def make_client(instance):
    """``client_manager.rt``: the project's RPC ``Clients``."""
    # openstack.config keeps our --os-rt-* options with "os_" stripped.
    config = instance._cli_options.config
    connect.init_backend()
    files = config.get('rt_config_file')
    return connect.make_clients(
        'openstack rt', [files] if files else None,
        config.get('rt_transport_url'),
        float(config.get('rt_timeout') or connect.DEFAULT_TIMEOUT),
        options='--os-rt-')


def build_option_parser(parser):
    parser.add_argument(
        '--os-rt-api-version', metavar='<rt-api-version>',
        default=DEFAULT_API_VERSION,
        help=f'nova_rt CLI version (default: {DEFAULT_API_VERSION})')
    connect.add_options(parser, prefix='--os-rt-')
    return parser
