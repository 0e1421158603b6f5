"""[upgrade_levels]: the RPC version caps of a rolling upgrade, as Nova's.

A client sends no more than its peer's release understands: during an
upgrade, set the cap to the release the not yet upgraded peers run, and
remove it (or restart with ``auto``) once every peer runs the new one.
"""

from oslo_config import cfg

from nova_rt import exception

upgrade_levels_group = cfg.OptGroup(
    'upgrade_levels', title='RPC version caps for rolling upgrades',
    help='Each option is unset (send the newest version), "auto" (send the '
         'newest and step down, once per peer, to what a peer answers it '
         'understands), a release name, or an RPC version like 1.0.')

#: Release name -> the newest version of each RPC API that release serves.
#: One row per release; the last one is this release, and a unit test holds
#: it to the tables of methods.
RELEASES = {
    '2026.2': {'compute': '1.0', 'placement': '1.0'},
    '2027.1': {'compute': '1.1', 'placement': '1.0'},
}
AUTO = 'auto'
#: The RPC APIs that can be capped: the option of each is its name.
APIS = ('compute', 'placement')

upgrade_levels_opts = [
    cfg.StrOpt(
        'compute',
        help='Cap on the compute RPC API (nova-rt-compute) that this '
             'service\'s clients send: "auto", a release name (' +
             ', '.join(RELEASES) + ') or a version like 1.0. Set it on the '
             'conductor and the CLI while compute hosts of an older release '
             'remain.'),
    cfg.StrOpt(
        'placement',
        help='Cap on the placement RPC API (nova-rt-placement) that this '
             'service\'s clients send: "auto", a release name (' +
             ', '.join(RELEASES) + ') or a version like 1.0. Set it on the '
             'compute hosts when they are upgraded before placement.'),
]


def version_cap(value, api: str):
    """The version ``value`` stands for: None (no cap), ``AUTO`` or ``X.Y``.

    Raises ``ConfigError`` naming ``[upgrade_levels] <api>`` for a value
    that is no known release and no version of this API.
    """
    if value is None or value == AUTO:
        return value
    if value in RELEASES:
        return RELEASES[value][api]
    newest = RELEASES[list(RELEASES)[-1]][api]
    known = f'"auto", a release name ({", ".join(RELEASES)}) or a version ' \
            f'like 1.0 up to {newest}'
    try:
        major, minor = (int(part) for part in value.split('.'))
    except ValueError:
        raise exception.ConfigError(
            reason=f'[upgrade_levels] {api}: {value!r} is not {known}') from None
    if major != int(newest.split('.')[0]) or minor < 0 or \
            (major, minor) > tuple(int(p) for p in newest.split('.')):
        raise exception.ConfigError(
            reason=f'[upgrade_levels] {api}: {value!r} is no version this '
                   f'release knows: {known}')
    return f'{major}.{minor}'


def check(conf) -> None:
    for api in APIS:
        version_cap(getattr(conf.upgrade_levels, api), api)


def register_opts(conf):
    conf.register_group(upgrade_levels_group)
    conf.register_opts(upgrade_levels_opts, group=upgrade_levels_group)


def list_opts():
    return {upgrade_levels_group: upgrade_levels_opts}
