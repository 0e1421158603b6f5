"""[api]: Placement's REST API (``nova_rt.placement.rest``).

Served by ``nova-rt-placement-api`` (the development server: pbr's WSGI
script) or by uWSGI/mod_wsgi through ``nova_rt.placement.rest.wsgi``; the
bind options are for the former, a WSGI server has its own.
"""

from oslo_config import cfg

api_group = cfg.OptGroup(
    'api', title='Placement REST API',
    help="OpenStack Placement's HTTP API on the placement database "
         '(doc/source/rest-api.rst).')

api_opts = [
    cfg.HostAddressOpt(
        'bind_host', default='0.0.0.0',
        help='Address nova-rt-placement-api listens on when run as its own '
             'server (not used under uWSGI or mod_wsgi).'),
    cfg.PortOpt(
        'bind_port', default=8778, min=1,
        help="TCP port nova-rt-placement-api listens on when run as its own "
             "server (Placement's usual port; the script's --port wins)."),
    cfg.StrOpt(
        'auth_strategy', default='keystone',
        choices=[('keystone', 'Keystone tokens, checked by '
                              "keystonemiddleware's auth_token "
                              '([keystone_authtoken])'),
                 ('noauth2', 'Development only: the X-Auth-Token value '
                             '"admin" is the admin, any other a user '
                             'without roles ("user:project" names both)')],
        help='How requests are authenticated. The root document (/) is '
             'always served without authentication, as in Placement.'),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(api_opts, group=api_group)


def list_opts():
    return {api_group: api_opts}
