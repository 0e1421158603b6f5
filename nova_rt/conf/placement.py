"""[placement] and [placement_database] options of the placement service."""

from oslo_config import cfg

placement_group = cfg.OptGroup('placement', title='Placement service options')
placement_database_group = cfg.OptGroup(
    'placement_database', title='Placement database options')

placement_opts = [
    cfg.StrOpt(
        'candidate_order', default='spread',
        choices=[('spread', 'Emptiest hosts first'),
                 ('pack', 'Fullest hosts that still fit first')],
        help='Order of allocation candidates.'),
    cfg.IntOpt(
        'heartbeat_timeout', default=60, min=1, max=86400,
        help='Seconds without a heartbeat after which a host is not alive '
             'and is offered in no allocation candidates.'),
    cfg.IntOpt(
        'heartbeat_flush_interval_ms', default=1000, min=0, max=10000,
        help='Heartbeats (and the liveness of reports that change nothing) '
             'are remembered per host and written in one statement every '
             'this many milliseconds, stamped with the time each arrived. A '
             'heartbeat shows in the database at most this much later; a '
             'process that is killed loses at most this interval of them '
             '(SIGTERM loses none), which the hosts\' next heartbeats '
             'replace. 0 writes each heartbeat in a transaction of its own '
             'as it arrives.'),
]

placement_database_opts = [
    cfg.StrOpt(
        'connection', secret=True,
        default='sqlite:///$state_path/placement.sqlite',
        help='SQLAlchemy URL of the placement database. SQLite serves one '
             'process; use postgresql+psycopg://user:password@host/db or '
             'mysql+pymysql://user:password@host/db (MySQL, MariaDB, '
             'Galera) for production and for several placement processes.'),
    cfg.BoolOpt(
        'sync_on_startup', default=False,
        help='Upgrade the database schema when nova-rt-placement starts, '
             'instead of running "nova-rt-manage db sync" first. As in '
             'OpenStack Placement, off by default: with several processes '
             'an operator runs the migration once.'),
    cfg.IntOpt(
        'vacuum_interval', default=10, min=0, max=3600,
        help='PostgreSQL only: every this many seconds, vacuum and analyze '
             'the tables that reports churn (allocations, consumers, '
             'inventories, resource_providers) once their dead rows reach '
             '1000 and a tenth of their live rows. Autovacuum visits a '
             'database only once per autovacuum_naptime, and until a '
             'vacuum every report pays for the dead rows. One placement '
             'process at a time does it (advisory lock); 0 leaves it to '
             'autovacuum alone.'),
]


def register_opts(conf):
    conf.register_group(placement_group)
    conf.register_opts(placement_opts, group=placement_group)
    conf.register_group(placement_database_group)
    conf.register_opts(placement_database_opts,
                       group=placement_database_group)


def list_opts():
    return {placement_group: placement_opts,
            placement_database_group: placement_database_opts}
