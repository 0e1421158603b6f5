"""``nova-rt-manage --config-file F db sync|version | store recover |
identity create-key|rotate-key|retire-old-keys PRINCIPAL``.

``db sync`` upgrades the schema of ``[placement_database] connection`` to
the newest migration (idempotent); ``db version`` prints the current one and
exits 1 when it is not the newest, so scripts can check before starting.

``store recover [--dry-run] [--allow-partial] [--force]`` rebuilds the
compute daemon's local store (``$state_path/compute.sqlite``) when it was
lost or damaged: from placement's allocations on this node's provider tree
and libvirt's domains (``nova_rt.compute.recovery``).  Run it on the compute
host, with the daemon's configuration, while nova-rt-compute is stopped.
It prints what it rebuilt and what it could not, and exits 0 once the new
store is in place (or, with ``--dry-run``, once it has shown what it would
write), 1 when it wrote nothing.

``identity create-key PRINCIPAL`` writes ``<PRINCIPAL>.key`` (mode 0600) and
``<PRINCIPAL>.pub`` into ``[identity] keys_dir`` and prints their paths;
``rotate-key`` makes a new key and keeps the previous one valid until
``retire-old-keys`` (``doc/source/security.rst``).
"""

from __future__ import annotations

import sys

from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception
from nova_rt import version

#: Seconds each placement call of ``store recover`` may take.
RECOVER_TIMEOUT = 30.0


def _add_commands(subparsers):
    db_parser = subparsers.add_parser('db', help='placement database')
    db_sub = db_parser.add_subparsers(dest='action')
    db_sub.required = True
    db_sub.add_parser('sync', help='upgrade the schema to the newest')
    db_sub.add_parser('version', help='print the schema version')

    store_parser = subparsers.add_parser(
        'store', help="the compute daemon's local state store")
    store_sub = store_parser.add_subparsers(dest='action')
    store_sub.required = True
    recover = store_sub.add_parser(
        'recover', help='rebuild a lost or damaged store from placement '
                        'and libvirt (nova-rt-compute stopped)')
    recover.add_argument('--dry-run', action='store_true',
                         help='show what would be rebuilt, write nothing')
    recover.add_argument('--allow-partial', action='store_true',
                         help='write the store even though placement counts '
                              'usage for consumers that were not found (the '
                              'first report then removes it from placement)')
    recover.add_argument('--force', action='store_true',
                         help='rebuild a store that is not lost (it is kept '
                              'aside, as any replaced file)')


    identity_parser = subparsers.add_parser(
        'identity', help='message signing keys ([identity] keys_dir)')
    identity_sub = identity_parser.add_subparsers(dest='action')
    identity_sub.required = True
    for action, text in (
            ('create-key', "write a new principal's key pair"),
            ('rotate-key', 'a new key; the previous one stays valid'),
            ('retire-old-keys', 'only the current key stays valid')):
        parser = identity_sub.add_parser(action, help=text)
        parser.add_argument('principal', metavar='PRINCIPAL',
                            help='a host name, an operator or a conductor')


_CATEGORY = cfg.SubCommandOpt('category', title='Commands',
                              handler=_add_commands)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    conf = nova_conf.CONF
    if 'category' not in conf:
        conf.register_cli_opt(_CATEGORY)
    try:
        conf(argv, project='nova_rt', prog='nova-rt-manage',
             version=version.version_string())
        if conf.category.name == 'identity':
            # Making keys needs none of the services' configuration, and
            # must work before the keys it makes exist.
            return _identity(conf, conf.category)
        service = 'compute' if conf.category.name == 'store' else 'placement'
        nova_conf.validate(conf, service=service)
    except exception.ConfigError as error:
        print(f'nova-rt-manage: {error}', file=sys.stderr)
        return 1
    if conf.category.name == 'store':
        return _store_recover(conf, conf.category)
    return _db(conf)


def _identity(conf, args) -> int:
    """``identity create-key|rotate-key|retire-old-keys PRINCIPAL``.

    The key file is ``[identity] key_file`` when PRINCIPAL is this
    configuration's own principal and that option is set, else
    ``<keys_dir>/<PRINCIPAL>.key``.
    """
    from nova_rt.identity import config as identity_config
    from nova_rt.identity import keys

    keys_dir = conf.identity.keys_dir
    principal = args.principal
    key_file = None
    if conf.identity.key_file and principal in (
            identity_config.principal(conf, 'compute'),
            identity_config.principal(conf, 'placement')):
        key_file = conf.identity.key_file
    try:
        if args.action == 'create-key':
            private, public = keys.create_key(keys_dir, principal, key_file)
            print(f'{principal}: private key {private} (mode 0600: keep it on '
                  f'its own host only)')
            print(f'{principal}: public key {public} (copy it into '
                  '[identity] keys_dir on every host that must believe it)')
        elif args.action == 'rotate-key':
            private, public, valid = keys.rotate_key(keys_dir, principal,
                                                     key_file)
            print(f'{principal}: new private key {private}')
            print(f'{principal}: {public} now holds keys {", ".join(valid)} '
                  '(newest first): copy it to every receiver, then run '
                  f'"nova-rt-manage identity retire-old-keys {principal}"')
        else:
            public, kid = keys.retire_old_keys(keys_dir, principal, key_file)
            print(f'{principal}: {public} now holds only key {kid}')
    except (keys.KeyFileError, OSError) as error:
        print(f'nova-rt-manage: {error}', file=sys.stderr)
        return 1
    return 0


def _db(conf) -> int:
    from nova_rt.placement import db

    url = conf.placement_database.connection
    try:
        if conf.category.action == 'sync':
            print(f'Database {db.safe_url(url)} at revision {db.sync(url)}')
            return 0
        current = db.current(url)
        print(current or 'empty (run "nova-rt-manage db sync")')
        return 0 if current == db.head() else 1
    except exception.InvalidInput as error:
        print(f'nova-rt-manage: {error}', file=sys.stderr)
        return 1
    except Exception as error:
        print(f'nova-rt-manage: cannot use the database {db.safe_url(url)}: '
              f'{type(error).__name__}', file=sys.stderr)
        return 1


def _refuse(message: str) -> int:
    print(f'nova-rt-manage: {message}', file=sys.stderr)
    return 1


def _store_recover(conf, args) -> int:
    from nova_rt.cli import clients as cli_clients
    from nova_rt.compute import rebuild
    from nova_rt.compute import recovery
    from nova_rt.compute import store as store_mod

    path = store_mod.store_path(conf.state_path)
    found = store_mod.inspect(path)
    print(f'Local state store {path}: {found["state"]}'
          + (f' ({found["reason"]})' if found['reason'] else ''))
    if found['state'] == 'ok' and found['root_provider_uuid'] and not args.force:
        return _refuse(
            f'{path} holds {found["instances"]} instances and '
            f'{found["migrations"]} migrations in progress of root provider '
            f'{found["root_provider_uuid"]}: it is not lost, nothing was '
            'written. To rebuild it anyway, stop nova-rt-compute and pass '
            '--force (the file is kept aside).')
    if found['state'] == 'newer' and not args.force:
        return _refuse(f'{path} was written by a newer nova_rt: run that '
                       'release, or pass --force to rebuild it anyway (the '
                       'file is kept aside). Nothing was written.')
    in_use = recovery.holders(path)
    if in_use and not args.dry_run:
        return _refuse(f'{path} is open in process {", ".join(map(str, in_use))}'
                       ': stop nova-rt-compute first. Nothing was written.')

    # Signed as this compute host: its own allocations are what it reads.
    clients = cli_clients.Clients(conf, None, RECOVER_TIMEOUT, service='compute')
    try:
        sources = recovery.gather(conf, clients.placement, clients.context())
    except exception.LocalStoreError as error:
        if found['state'] in ('missing', 'empty') or args.dry_run:
            return _refuse(str(error))
        # Nothing to rebuild, but the damaged file would still stop the
        # daemon: put it aside and let it start as a new host.
        aside = recovery.move_aside(path)
        print(f'{error}. {path} was moved to {aside}.')
        return 0
    except (cli_clients.CliError, exception.NovaRtException) as error:
        return _refuse(f'{error}. Nothing was written.')
    finally:
        clients.close()

    recovered = rebuild.plan(sources)
    _print_plan(conf.host, sources, recovered)
    if not recovered.complete and not args.allow_partial:
        return _refuse('not written: placement counts usage on this node for '
                       'consumers that were not found (see above). Pass '
                       '--allow-partial to write what was rebuilt anyway.')
    if args.dry_run:
        print('Dry run: nothing was written.')
        return 0
    aside = recovery.write(path, recovered)
    print(f'Wrote {path}: {len(recovered.records)} instances, root provider '
          f'{recovered.root_uuid}'
          + (f'; the previous file is kept as {aside}' if aside else '')
          + '. Start nova-rt-compute: it reports these allocations to '
            'placement as they are.')
    return 0


def _print_plan(host: str, sources, recovered) -> None:
    libvirt = (f'libvirt unreachable ({sources.libvirt_error})'
               if sources.libvirt_error else
               f'libvirt: {len(sources.domains)} domains')
    print(f'Rebuilding for node {host}, root provider {recovered.root_uuid}: '
          f'{len(sources.consumers)} consumers from {sources.consumers_from}; '
          f'{libvirt}.')
    print(f'Rebuilt ({len(recovered.records)} instances):')
    for line in recovered.rebuilt:
        print(f'  {line}')
    print('Not rebuilt, and what follows:')
    for line in recovered.not_rebuilt:
        print(f'  - {line}')


if __name__ == '__main__':
    sys.exit(main())
