"""``nova-rt-manage --config-file F db sync|version``: placement database.

``db sync`` upgrades the schema of ``[placement_database] connection`` to
the newest migration (idempotent); ``db version`` prints the current one and
exits 1 when it is not the newest, so scripts can check before starting.
"""

from __future__ import annotations

import sys

from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception


def _add_commands(subparsers):
    db_parser = subparsers.add_parser('db', help='placement database')
    db_sub = db_parser.add_subparsers(dest='action')
    db_sub.required = True
    db_sub.add_parser('sync', help='upgrade the schema to the newest')
    db_sub.add_parser('version', help='print the schema version')


_CATEGORY = cfg.SubCommandOpt('category', title='Commands',
                              handler=_add_commands)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    conf = nova_conf.CONF
    if 'category' not in conf:
        conf.register_cli_opt(_CATEGORY)
    try:
        conf(argv, project='nova_rt', prog='nova-rt-manage')
        nova_conf.validate(conf, service='placement')
    except exception.ConfigError as error:
        print(f'nova-rt-manage: {error}', file=sys.stderr)
        return 1

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


if __name__ == '__main__':
    sys.exit(main())
