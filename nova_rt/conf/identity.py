"""[identity] options: who this process is, and whom it believes.

Read by both services and the ``nova-rt`` CLI (``doc/source/security.rst``).
"""

from oslo_config import cfg

identity_group = cfg.OptGroup(
    'identity', title='Message signatures',
    help='Every RPC message can be signed by its sender (Ed25519) and '
         'checked by its receiver, so that a host can speak only for itself.')

identity_opts = [
    cfg.BoolOpt(
        'enforce', default=False,
        help='Refuse, with NotAuthorized, every message that is unsigned, '
             'wrongly signed, replayed or outside the replay window, and '
             'every reply that is not from the principal called. Off by '
             'default so that an upgrade can turn it on host by host: off, '
             'such messages are logged and accepted.'),
    cfg.StrOpt(
        'principal',
        help='The name this process signs as. Default: [DEFAULT] host for '
             'nova-rt-compute and the CLI, [identity] placement_principal '
             'for nova-rt-placement.'),
    cfg.StrOpt(
        'keys_dir', default='/etc/nova_rt/keys',
        help='Directory of key files, one per principal: <principal>.pub '
             'verifies that principal (on every receiver), <principal>.key '
             'is its private key (on its own host only, mode 0600). '
             '"nova-rt-manage identity create-key" writes both.'),
    cfg.StrOpt(
        'key_file',
        help='This principal\'s private key. Default: '
             '<keys_dir>/<principal>.key.'),
    cfg.ListOpt(
        'operators', default=[],
        help='Principals allowed operator writes on placement (set_traits, '
             'set_aggregates, delete_resource_provider) and every other '
             'call.'),
    cfg.ListOpt(
        'conductors', default=[],
        help='Principals allowed to call a compute host\'s claim, move, '
             'PCI and audit methods (operators may too).'),
    cfg.StrOpt(
        'placement_principal', default='nova-rt-placement',
        help='The principal every nova-rt-placement process signs its '
             'replies as; clients accept placement\'s replies only from it.'),
    cfg.IntOpt(
        'replay_window', default=60, min=1, max=3600,
        help='Seconds a message stays valid after (and before) its time '
             'stamp; hosts\' clocks must agree within this. Each message is '
             'accepted once within it.'),
    cfg.BoolOpt(
        'open_reads', default=True,
        help='Serve read-only methods (listing providers, candidates, host '
             'state) to unsigned callers even when enforce is on.'),
]


def register_opts(conf):
    conf.register_group(identity_group)
    conf.register_opts(identity_opts, group=identity_group)


def list_opts():
    return {identity_group: identity_opts}
