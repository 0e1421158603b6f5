"""The ``nova-rt`` commands (also ``openstack rt ...``): one cliff class each.

A command adds its arguments and fetches its document with one or a few RPC
calls of ``shared/spec/rpc-api.md``; it never prints, so the same class
serves every ``-f`` format under both programs.  ``COMMANDS`` is the one
list of them: ``nova-rt`` registers it, and setup.cfg's ``openstack.rt.v1``
entry points repeat it for python-openstackclient (a test keeps the two
equal).
"""

from __future__ import annotations

import datetime

from nova_rt.cli import base
from nova_rt.cli import output
from nova_rt.cli import payloads
from nova_rt.cli import views

EPILOG = '''examples:
  nova-rt host list
  nova-rt host show compute-1 -f json
  nova-rt claim create --host compute-1 --flavor-vcpus 2 --flavor-memory-mb 2048
  nova-rt candidates --resource VCPU=2 --resource MEMORY_MB=2048 \\
      --required HW_CPU_X86_AVX2
  nova-rt provider list -f value -c uuid -c name'''


# -- hosts -------------------------------------------------------------------

def _age_s(iso: str | None, now: datetime.datetime) -> float | None:
    if not iso:
        return None
    seen = datetime.datetime.fromisoformat(iso)
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=datetime.timezone.utc)
    return max((now - seen).total_seconds(), 0.0)


class HostList(base.List):
    """Hosts placement knows, alive or not, with their usage."""

    view = views.HOST_LIST

    def fetch(self, clients, args):
        ctx = clients.context()
        now = datetime.datetime.now(datetime.timezone.utc)
        hosts = []
        for rp in clients.placement.list_resource_providers(ctx):
            if rp['parent_uuid'] is not None:
                continue        # PCI child providers belong to their host's row
            full = clients.placement.get_resource_provider(ctx, rp['uuid'])
            invs = full.get('inventories') or {}
            hosts.append({
                'host': rp['host'] or rp['name'], 'name': rp['name'],
                'uuid': rp['uuid'], 'alive': rp['alive'],
                'last_heartbeat': rp['last_heartbeat'],
                'heartbeat_age_s': _age_s(rp['last_heartbeat'], now),
                'capacity': {rc: inv['capacity'] for rc, inv in invs.items()},
                'usages': full.get('usages') or {}})
        hosts.sort(key=lambda h: h['host'])
        return hosts


def _host_arg(parser, positional: bool = True, help_text: str | None = None):
    if positional:
        parser.add_argument('host', metavar='HOST', help=help_text)
    else:
        parser.add_argument('--host', required=True, metavar='HOST',
                            help=help_text)


class HostShow(base.Show):
    """A host as its own daemon sees it: usage, NUMA, PCI, unmanaged domains.

    Unmanaged domains run on the host without being tracked; they are
    counted as used.
    """

    view = views.HOST_SHOW

    def add_arguments(self, parser):
        _host_arg(parser)

    def fetch(self, clients, args):
        return clients.compute.get_host_state(clients.context(), args.host)


class AuditRun(base.Show):
    """Run the audit of HOST now (and report to placement)."""

    view = views.AUDIT

    def add_arguments(self, parser):
        _host_arg(parser)

    def fetch(self, clients, args):
        return clients.compute.run_audit(clients.context(), args.host)


# -- claims ------------------------------------------------------------------

def _flavor_opts(parser, prefix: str = 'flavor', required: bool = True,
                 what: str = "the instance's flavor") -> None:
    group = parser.add_argument_group(what)
    opt = f'--{prefix.replace("_", "-")}'
    group.add_argument(f'{opt}-vcpus', type=payloads.positive_int,
                       required=required, metavar='N')
    group.add_argument(f'{opt}-memory-mb', type=payloads.positive_int,
                       required=required, metavar='MB')
    group.add_argument(f'{opt}-root-gb', type=payloads.non_negative_int,
                       default=0, metavar='GB')
    group.add_argument(f'{opt}-ephemeral-gb', type=payloads.non_negative_int,
                       default=0, metavar='GB')
    group.add_argument(f'{opt}-swap', type=payloads.non_negative_int, default=0,
                       metavar='MB')
    group.add_argument(f'{opt}-name', metavar='NAME',
                       help='default: made from the figures')
    group.add_argument('--extra-spec' if prefix == 'flavor' else f'{opt}-extra-spec',
                       dest=f'{prefix}_extra_spec', action='append', default=[],
                       type=payloads.key_value_arg, metavar='KEY=VALUE',
                       help='e.g. pci_passthrough:alias=nic:1 (repeatable)')


def _flavor(args, prefix: str = 'flavor') -> dict:
    get = lambda name: getattr(args, f'{prefix}_{name}')  # noqa: E731
    return payloads.flavor(get('vcpus'), get('memory_mb'), get('root_gb'),
                           get('ephemeral_gb'), get('swap'), get('extra_spec'),
                           get('name'))


def _owner_opts(parser) -> None:
    parser.add_argument('--project', default='nova-rt-cli', help='project_id')
    parser.add_argument('--user', default='nova-rt-cli', help='user_id')


def _uuid_arg(parser, name: str, metavar: str) -> None:
    parser.add_argument(name, metavar=metavar, type=payloads.uuid_arg)


def _done(message: str, **data) -> dict:
    return {**data, 'message': message}


class ClaimCreate(base.Show):
    """Claim resources for a new instance on HOST."""

    view = views.CLAIM

    def add_arguments(self, parser):
        _host_arg(parser, positional=False)
        parser.add_argument('--instance-uuid', type=payloads.uuid_arg,
                            help='default: a new UUID')
        _owner_opts(parser)
        _flavor_opts(parser)

    def fetch(self, clients, args):
        instance = payloads.instance(args.instance_uuid or payloads.new_uuid(),
                                     _flavor(args), args.project, args.user)
        return clients.compute.instance_claim(clients.context(), args.host,
                                              instance=instance)


class ClaimAbort(base.Show):
    """Free everything an instance holds on HOST (failed build)."""

    view = views.DONE

    def add_arguments(self, parser):
        _host_arg(parser, positional=False)
        _uuid_arg(parser, 'instance_uuid', 'INSTANCE_UUID')

    def fetch(self, clients, args):
        clients.compute.abort_instance_claim(clients.context(), args.host,
                                             instance_uuid=args.instance_uuid)
        return _done(f'Claim of instance {args.instance_uuid} on {args.host} '
                     'aborted.', host=args.host, instance_uuid=args.instance_uuid)


class ClaimUpdate(base.Show):
    """An instance's new vm_state."""

    view = views.DONE

    def add_arguments(self, parser):
        _host_arg(parser, positional=False)
        parser.add_argument('--vm-state', required=True)
        parser.add_argument('--task-state')
        _uuid_arg(parser, 'instance_uuid', 'INSTANCE_UUID')

    def fetch(self, clients, args):
        clients.compute.update_instance(clients.context(), args.host,
                                        instance_uuid=args.instance_uuid,
                                        vm_state=args.vm_state,
                                        task_state=args.task_state)
        return _done(f'Instance {args.instance_uuid} on {args.host} is now '
                     f'{args.vm_state}.', host=args.host,
                     instance_uuid=args.instance_uuid, vm_state=args.vm_state,
                     task_state=args.task_state)


# -- moves -------------------------------------------------------------------

class _MigrationStart(base.Show):
    view = views.MOVE
    kind = ''               # a ``migration`` subcommand
    claim_method = ''       # the compute method that claims on the destination

    def add_arguments(self, parser):
        parser.add_argument('--instance', dest='instance_uuid', required=True,
                            type=payloads.uuid_arg, metavar='UUID')
        parser.add_argument('--source', required=True, metavar='HOST')
        parser.add_argument('--dest', required=self.kind != 'resize',
                            metavar='HOST')
        parser.add_argument('--migration-uuid', type=payloads.uuid_arg,
                            help='default: a new UUID')
        _owner_opts(parser)
        _flavor_opts(parser, what="the instance's current flavor")
        if self.kind == 'resize':
            _flavor_opts(parser, 'new_flavor', what='the new flavor')

    def fetch(self, clients, args):
        current = _flavor(args)
        new = _flavor(args, 'new_flavor') if self.kind == 'resize' else current
        dest = args.dest or args.source
        migration = payloads.migration(args.migration_uuid or payloads.new_uuid(),
                                       args.instance_uuid, self.kind, args.source,
                                       dest, current, new)
        instance = payloads.instance(args.instance_uuid, current, args.project,
                                     args.user, vm_state='active')
        method = getattr(clients.compute, self.claim_method)
        claim = method(clients.context(), dest, instance=instance,
                       migration=migration)
        return {'migration': migration, 'claim': claim}


class MigrationResize(_MigrationStart):
    """Resize: claim the new flavor on DEST (default: SOURCE)."""
    kind, claim_method = 'resize', 'resize_claim'


class MigrationMigrate(_MigrationStart):
    """Cold migration: claim the flavor on DEST."""
    kind, claim_method = 'migrate', 'resize_claim'


class MigrationEvacuate(_MigrationStart):
    """Evacuation: claim the flavor on DEST (rebuild)."""
    kind, claim_method = 'evacuate', 'rebuild_claim'


class MigrationLive(_MigrationStart):
    """Live migration: claim the flavor on DEST."""
    kind, claim_method = 'live', 'live_migration_claim'


class _DestCall(base.Show):
    view = views.DONE
    method = ''             # the compute method called on the destination
    verb = ''

    def add_arguments(self, parser):
        _host_arg(parser, positional=False, help_text='the destination')
        _uuid_arg(parser, 'migration_uuid', 'MIGRATION_UUID')

    def fetch(self, clients, args):
        getattr(clients.compute, self.method)(clients.context(), args.host,
                                              migration_uuid=args.migration_uuid)
        return _done(f'Migration {args.migration_uuid} {self.verb} on '
                     f'{args.host}.', host=args.host,
                     migration_uuid=args.migration_uuid)


class MigrationFinish(_DestCall):
    """The move finished: the instance lives on HOST with its new flavor."""
    method, verb = 'finish_move', 'finished'


class MigrationRevert(_DestCall):
    """Revert on the destination HOST: free the new flavor."""
    method, verb = 'drop_move_claim_at_dest', 'reverted'


class MigrationAbort(_DestCall):
    """A move that failed before it finished: free its claim on HOST."""
    method, verb = 'abort_move_claim', 'aborted'


class MigrationConfirm(base.Show):
    """Confirm on the source: free the old flavor there."""

    view = views.DONE

    def add_arguments(self, parser):
        parser.add_argument('--instance', dest='instance_uuid', required=True,
                            type=payloads.uuid_arg, metavar='UUID')
        parser.add_argument('--source', required=True, metavar='HOST')
        parser.add_argument('--dest', metavar='HOST',
                            help='default: SOURCE (same-host resize)')
        parser.add_argument('--type', default='resize', choices=sorted(
            set(payloads.MIGRATION_TYPES.values())), help='migration_type')
        _uuid_arg(parser, 'migration_uuid', 'MIGRATION_UUID')

    def fetch(self, clients, args):
        dest = args.dest or args.source
        migration = payloads.migration(args.migration_uuid, args.instance_uuid,
                                       args.type, args.source, dest,
                                       None, None, status='confirming')
        clients.compute.drop_move_claim_at_source(clients.context(), args.source,
                                                  migration=migration)
        message = (f'Migration {args.migration_uuid} confirmed: {args.source} '
                   'freed the old flavor')
        if dest != args.source:
            # As Nova's conductor records it: the destination learns the move
            # is over, so it stops listing the migration.
            clients.compute.update_migration(clients.context(), dest,
                                             migration_uuid=args.migration_uuid,
                                             status='confirmed')
            message += f', {dest} marked it confirmed'
        return _done(message + '.', host=args.source, dest=dest,
                     migration_uuid=args.migration_uuid)


class MigrationUpdate(base.Show):
    """A migration's new status."""

    view = views.DONE

    def add_arguments(self, parser):
        _host_arg(parser, positional=False)
        parser.add_argument('--status', required=True)
        _uuid_arg(parser, 'migration_uuid', 'MIGRATION_UUID')

    def fetch(self, clients, args):
        clients.compute.update_migration(clients.context(), args.host,
                                         migration_uuid=args.migration_uuid,
                                         status=args.status)
        return _done(f'Migration {args.migration_uuid} on {args.host} is now '
                     f'{args.status}.', host=args.host,
                     migration_uuid=args.migration_uuid, status=args.status)


# -- placement ---------------------------------------------------------------

class Candidates(base.List):
    """Which live hosts can take these resources (emptiest first)."""

    view = views.CANDIDATES

    def add_arguments(self, parser):
        parser.add_argument(
            '--resource', dest='resource', action='append', default=[],
            type=payloads.resource_arg, metavar='RC=N',
            help='an amount of a resource class, e.g. VCPU=2 (repeat for '
                 'each class; at least one)')
        parser.add_argument(
            '--resources', dest='resource_lists', action='append', default=[],
            type=payloads.resources_arg, metavar='RC=N[,RC=N...]',
            help='deprecated: repeat --resource instead')
        parser.add_argument('--required', action='append', default=[],
                            type=payloads.trait_arg, metavar='TRAIT')
        parser.add_argument('--forbidden', action='append', default=[],
                            type=payloads.trait_arg, metavar='TRAIT')
        parser.add_argument('--limit', type=payloads.positive_int)

    def check(self, args):
        super().check(args)
        try:
            args.resources = payloads.merge_resources(
                args.resource + [item for given in args.resource_lists
                                 for item in given.items()])
        except ValueError as exc:
            raise output.UsageError(f'--resource: {exc}') from None

    def fetch(self, clients, args):
        return clients.placement.get_allocation_candidates(
            clients.context(), resources=args.resources, required=args.required,
            forbidden=args.forbidden, limit=args.limit)


class ProviderList(base.List):
    """Resource providers in placement."""

    view = views.PROVIDER_LIST

    def add_arguments(self, parser):
        parser.add_argument('--name')
        parser.add_argument('--host')

    def fetch(self, clients, args):
        return clients.placement.list_resource_providers(
            clients.context(), name=args.name, host=args.host)


class _ProviderCommand(base.Show):
    view = views.PROVIDER_SHOW

    def add_arguments(self, parser):
        _uuid_arg(parser, 'uuid', 'UUID')


class ProviderShow(_ProviderCommand):
    """A provider with inventories, usages, traits, aggregates."""

    def fetch(self, clients, args):
        return clients.placement.get_resource_provider(clients.context(),
                                                       args.uuid)


class ProviderDelete(_ProviderCommand):
    """Decommission a provider (refused while allocated; operators)."""

    view = views.DONE

    def fetch(self, clients, args):
        clients.placement.delete_resource_provider(clients.context(), args.uuid)
        return _done(f'provider {args.uuid} and its descendants deleted',
                     uuid=args.uuid)


class _OperatorWrite(_ProviderCommand):
    """Replace a provider's traits or aggregates at its current generation
    (an operator write: with ``[identity] enforce``, the CLI's principal
    must be one of ``[identity] operators``)."""

    method = ''             # the placement method that writes the set
    field = ''              # the argument's dest: 'traits' or 'aggregates'
    option = ''
    kind = staticmethod(payloads.trait_arg)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(self.option, dest=self.field, action='append',
                            default=[], type=self.kind,
                            metavar=self.option.lstrip('-').upper(),
                            help='repeat for each; the set replaces the old one')
        parser.add_argument('--generation', type=payloads.non_negative_int,
                            help="the provider's generation to write at "
                                 '(default: its current one)')

    def fetch(self, clients, args):
        ctx = clients.context()
        generation = args.generation
        if generation is None:
            generation = clients.placement.get_resource_provider(
                ctx, args.uuid)['generation']
        getattr(clients.placement, self.method)(
            ctx, args.uuid, getattr(args, self.field), generation)
        return clients.placement.get_resource_provider(ctx, args.uuid)


class ProviderTraitSet(_OperatorWrite):
    """Replace a provider's traits (none given: remove them all); operators."""
    method, field, option = 'set_traits', 'traits', '--trait'


class ProviderAggregateSet(_OperatorWrite):
    """Replace a provider's aggregates (none given: leave them); operators."""
    method, field, option = 'set_aggregates', 'aggregates', '--aggregate'
    kind = staticmethod(payloads.uuid_arg)


#: ``nova-rt <name>`` and ``openstack rt <name>``.
COMMANDS = {
    'host list': HostList,
    'host show': HostShow,
    'audit run': AuditRun,
    'claim create': ClaimCreate,
    'claim abort': ClaimAbort,
    'claim update': ClaimUpdate,
    'migration resize': MigrationResize,
    'migration migrate': MigrationMigrate,
    'migration evacuate': MigrationEvacuate,
    'migration live': MigrationLive,
    'migration finish': MigrationFinish,
    'migration revert': MigrationRevert,
    'migration abort': MigrationAbort,
    'migration confirm': MigrationConfirm,
    'migration update': MigrationUpdate,
    'candidates': Candidates,
    'provider list': ProviderList,
    'provider show': ProviderShow,
    'provider delete': ProviderDelete,
    'provider trait set': ProviderTraitSet,
    'provider aggregate set': ProviderAggregateSet,
}
