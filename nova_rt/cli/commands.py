"""The ``nova-rt`` commands: argparse tree and one handler per command.

A handler takes the ``Clients`` and the parsed arguments and returns an
``output.Result``; it never prints, so the same handler serves the table, JSON
and YAML views and is easy to test.  Each handler is a thin translation to
one or a few RPC calls of ``shared/spec/rpc-api.md``.
"""

from __future__ import annotations

import argparse
import datetime

from nova_rt.cli import output
from nova_rt.cli import payloads
from nova_rt.cli import views

EPILOG = '''examples:
  nova-rt host list
  nova-rt host show compute-1
  nova-rt claim create --host compute-1 --flavor-vcpus 2 --flavor-memory-mb 2048
  nova-rt candidates --resources VCPU=2,MEMORY_MB=2048 --required HW_CPU_X86_AVX2
  nova-rt -f json provider list'''


# -- hosts -------------------------------------------------------------------

def _age_s(iso: str | None, now: datetime.datetime) -> float | None:
    if not iso:
        return None
    seen = datetime.datetime.fromisoformat(iso)
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=datetime.timezone.utc)
    return max((now - seen).total_seconds(), 0.0)


def host_list(clients, args) -> output.Result:
    ctx = clients.context()
    now = datetime.datetime.now(datetime.timezone.utc)
    hosts = []
    for rp in clients.placement.list_resource_providers(ctx):
        if rp['parent_uuid'] is not None:
            continue        # PCI child providers belong to their host's row
        full = clients.placement.get_resource_provider(ctx, rp['uuid'])
        invs = full.get('inventories') or {}
        hosts.append({
            'host': rp['host'] or rp['name'], 'name': rp['name'], 'uuid': rp['uuid'],
            'alive': rp['alive'], 'last_heartbeat': rp['last_heartbeat'],
            'heartbeat_age_s': _age_s(rp['last_heartbeat'], now),
            'capacity': {rc: inv['capacity'] for rc, inv in invs.items()},
            'usages': full.get('usages') or {}})
    hosts.sort(key=lambda h: h['host'])
    return output.Result(hosts, views.host_list)


def host_show(clients, args) -> output.Result:
    state = clients.compute.get_host_state(clients.context(), args.host)
    return output.Result(state, views.host_show)


def audit_run(clients, args) -> output.Result:
    summary = clients.compute.run_audit(clients.context(), args.host)
    return output.Result(summary, views.audit)


# -- claims ------------------------------------------------------------------

def _flavor(args, prefix: str = 'flavor') -> dict:
    get = lambda name: getattr(args, f'{prefix}_{name}')  # noqa: E731
    return payloads.flavor(get('vcpus'), get('memory_mb'), get('root_gb'),
                           get('ephemeral_gb'), get('swap'), get('extra_spec'),
                           get('name'))


def _done(message: str, **data) -> output.Result:
    return output.Result({**data, 'message': message}, views.done)


def claim_create(clients, args) -> output.Result:
    instance = payloads.instance(args.instance_uuid or payloads.new_uuid(),
                                 _flavor(args), args.project, args.user)
    claim = clients.compute.instance_claim(clients.context(), args.host,
                                           instance=instance)
    return output.Result(claim, views.claim)


def claim_abort(clients, args) -> output.Result:
    clients.compute.abort_instance_claim(clients.context(), args.host,
                                         instance_uuid=args.instance_uuid)
    return _done(f'Claim of instance {args.instance_uuid} on {args.host} aborted.',
                 host=args.host, instance_uuid=args.instance_uuid)


def claim_update(clients, args) -> output.Result:
    clients.compute.update_instance(clients.context(), args.host,
                                    instance_uuid=args.instance_uuid,
                                    vm_state=args.vm_state,
                                    task_state=args.task_state)
    return _done(f'Instance {args.instance_uuid} on {args.host} is now '
                 f'{args.vm_state}.', host=args.host,
                 instance_uuid=args.instance_uuid, vm_state=args.vm_state,
                 task_state=args.task_state)


# -- moves -------------------------------------------------------------------

#: ``migration <kind>`` -> the compute method that claims on the destination.
CLAIM_METHODS = {'resize': 'resize_claim', 'migrate': 'resize_claim',
                 'evacuate': 'rebuild_claim', 'live': 'live_migration_claim'}


def migration_start(clients, args) -> output.Result:
    current = _flavor(args)
    new = _flavor(args, 'new_flavor') if args.kind == 'resize' else current
    dest = args.dest or args.source
    migration = payloads.migration(args.migration_uuid or payloads.new_uuid(),
                                   args.instance_uuid, args.kind, args.source,
                                   dest, current, new)
    instance = payloads.instance(args.instance_uuid, current, args.project,
                                 args.user, vm_state='active')
    method = getattr(clients.compute, CLAIM_METHODS[args.kind])
    claim = method(clients.context(), dest, instance=instance, migration=migration)
    return output.Result({'migration': migration, 'claim': claim}, views.move)


def migration_finish(clients, args) -> output.Result:
    clients.compute.finish_move(clients.context(), args.host,
                                migration_uuid=args.migration_uuid)
    return _done(f'Migration {args.migration_uuid} finished: the instance runs on '
                 f'{args.host} with its new flavor.', host=args.host,
                 migration_uuid=args.migration_uuid)


def migration_confirm(clients, args) -> output.Result:
    dest = args.dest or args.source
    migration = payloads.migration(args.migration_uuid, args.instance_uuid,
                                   args.type, args.source, dest,
                                   None, None, status='confirming')
    clients.compute.drop_move_claim_at_source(clients.context(), args.source,
                                              migration=migration)
    message = (f'Migration {args.migration_uuid} confirmed: {args.source} freed '
               'the old flavor')
    if dest != args.source:
        # As Nova's conductor records it: the destination learns the move is
        # over, so it stops listing the migration.
        clients.compute.update_migration(clients.context(), dest,
                                         migration_uuid=args.migration_uuid,
                                         status='confirmed')
        message += f', {dest} marked it confirmed'
    return _done(message + '.', host=args.source, dest=dest,
                 migration_uuid=args.migration_uuid)


def _dest_call(method: str, verb: str):
    def handler(clients, args) -> output.Result:
        getattr(clients.compute, method)(clients.context(), args.host,
                                         migration_uuid=args.migration_uuid)
        return _done(f'Migration {args.migration_uuid} {verb} on {args.host}.',
                     host=args.host, migration_uuid=args.migration_uuid)
    return handler


def migration_update(clients, args) -> output.Result:
    clients.compute.update_migration(clients.context(), args.host,
                                     migration_uuid=args.migration_uuid,
                                     status=args.status)
    return _done(f'Migration {args.migration_uuid} on {args.host} is now '
                 f'{args.status}.', host=args.host,
                 migration_uuid=args.migration_uuid, status=args.status)


# -- placement ---------------------------------------------------------------

def candidates(clients, args) -> output.Result:
    cands = clients.placement.get_allocation_candidates(
        clients.context(), resources=args.resources, required=args.required,
        forbidden=args.forbidden, limit=args.limit)
    return output.Result(cands, views.candidates)


def provider_list(clients, args) -> output.Result:
    rps = clients.placement.list_resource_providers(
        clients.context(), name=args.name, host=args.host)
    return output.Result(rps, views.provider_list)


def provider_show(clients, args) -> output.Result:
    rp = clients.placement.get_resource_provider(clients.context(), args.uuid)
    return output.Result(rp, views.provider_show)


def _operator_write(method: str, field: str):
    """``provider trait set`` / ``aggregate set``: replace the provider's
    traits or aggregates at its current generation (an operator write:
    with ``[identity] enforce``, the CLI's principal must be one of
    ``[identity] operators``)."""
    def handler(clients, args) -> output.Result:
        ctx = clients.context()
        generation = args.generation
        if generation is None:
            generation = clients.placement.get_resource_provider(
                ctx, args.uuid)['generation']
        getattr(clients.placement, method)(
            ctx, args.uuid, getattr(args, field), generation)
        rp = clients.placement.get_resource_provider(ctx, args.uuid)
        return output.Result(rp, views.provider_show)
    return handler


def provider_delete(clients, args) -> output.Result:
    clients.placement.delete_resource_provider(clients.context(), args.uuid)
    return _done(f'provider {args.uuid} and its descendants deleted',
                 uuid=args.uuid)


# -- the parser --------------------------------------------------------------

def _format_opt(parser) -> None:
    # Accepted after the command too (``nova-rt host list -f json``), as in
    # openstackclient; SUPPRESS keeps the global one when not given here.
    parser.add_argument('-f', '--format', choices=output.FORMATS,
                        default=argparse.SUPPRESS, help='output format')


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


def _owner_opts(parser) -> None:
    parser.add_argument('--project', default='nova-rt-cli', help='project_id')
    parser.add_argument('--user', default='nova-rt-cli', help='user_id')


def _leaf(subparsers, name: str, handler, help_text: str, **kwargs):
    parser = subparsers.add_parser(name, help=help_text, description=help_text,
                                   **kwargs)
    parser.set_defaults(handler=handler)
    _format_opt(parser)
    return parser


def _group(subparsers, name: str, help_text: str):
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = parser.add_subparsers(dest=f'{name}_command', metavar='COMMAND')
    sub.required = True
    return sub


def _host_commands(sub) -> None:
    hosts = _group(sub, 'host', 'compute hosts')
    _leaf(hosts, 'list', host_list, 'hosts placement knows, alive or not, with usage')
    p = _leaf(hosts, 'show', host_show, "a host as its own daemon sees it: usage, "
              "NUMA cells, PCI pools, unmanaged domains")
    p.add_argument('host', metavar='HOST')
    audit = _group(sub, 'audit', 'the periodic audit')
    p = _leaf(audit, 'run', audit_run, 'run the audit of HOST now')
    p.add_argument('host', metavar='HOST')


def _claim_commands(sub) -> None:
    claims = _group(sub, 'claim', 'claims of instances')
    p = _leaf(claims, 'create', claim_create, 'claim resources for a new instance')
    p.add_argument('--host', required=True)
    p.add_argument('--instance-uuid', type=payloads.uuid_arg,
                   help='default: a new UUID')
    _owner_opts(p)
    _flavor_opts(p)
    p = _leaf(claims, 'abort', claim_abort, "free everything an instance holds "
              "on HOST (failed build)")
    p.add_argument('--host', required=True)
    p.add_argument('instance_uuid', metavar='INSTANCE_UUID', type=payloads.uuid_arg)
    p = _leaf(claims, 'update', claim_update, "an instance's new vm_state")
    p.add_argument('--host', required=True)
    p.add_argument('--vm-state', required=True)
    p.add_argument('--task-state')
    p.add_argument('instance_uuid', metavar='INSTANCE_UUID', type=payloads.uuid_arg)


def _migration_commands(sub) -> None:
    moves = _group(sub, 'migration', 'moves of instances between hosts')
    for kind, help_text in (
            ('resize', 'resize: claim the new flavor on DEST (default: SOURCE)'),
            ('migrate', 'cold migration: claim the flavor on DEST'),
            ('evacuate', 'evacuation: claim the flavor on DEST (rebuild)'),
            ('live', 'live migration: claim the flavor on DEST')):
        p = _leaf(moves, kind, migration_start, help_text)
        p.set_defaults(kind=kind)
        p.add_argument('--instance', dest='instance_uuid', required=True,
                       type=payloads.uuid_arg, metavar='UUID')
        p.add_argument('--source', required=True, metavar='HOST')
        p.add_argument('--dest', required=kind != 'resize', metavar='HOST')
        p.add_argument('--migration-uuid', type=payloads.uuid_arg,
                       help='default: a new UUID')
        _owner_opts(p)
        _flavor_opts(p, what="the instance's current flavor")
        if kind == 'resize':
            _flavor_opts(p, 'new_flavor', what='the new flavor')
    for name, handler, help_text in (
            ('finish', migration_finish, 'the move finished: the instance lives on HOST'),
            ('revert', _dest_call('drop_move_claim_at_dest', 'reverted'),
             'revert on the destination HOST: free the new flavor'),
            ('abort', _dest_call('abort_move_claim', 'aborted'),
             'a move that failed before it finished: free its claim on HOST')):
        p = _leaf(moves, name, handler, help_text)
        p.add_argument('--host', required=True, help='the destination')
        p.add_argument('migration_uuid', metavar='MIGRATION_UUID',
                       type=payloads.uuid_arg)
    p = _leaf(moves, 'confirm', migration_confirm,
              'confirm on the source: free the old flavor there')
    p.add_argument('--instance', dest='instance_uuid', required=True,
                   type=payloads.uuid_arg, metavar='UUID')
    p.add_argument('--source', required=True, metavar='HOST')
    p.add_argument('--dest', metavar='HOST', help='default: SOURCE (same-host resize)')
    p.add_argument('--type', default='resize', choices=sorted(
        set(payloads.MIGRATION_TYPES.values())), help='migration_type')
    p.add_argument('migration_uuid', metavar='MIGRATION_UUID', type=payloads.uuid_arg)
    p = _leaf(moves, 'update', migration_update, "a migration's new status")
    p.add_argument('--host', required=True)
    p.add_argument('--status', required=True)
    p.add_argument('migration_uuid', metavar='MIGRATION_UUID', type=payloads.uuid_arg)


def _placement_commands(sub) -> None:
    p = _leaf(sub, 'candidates', candidates,
              'which live hosts can take these resources (emptiest first)')
    p.add_argument('--resources', required=True, type=payloads.resources_arg,
                   metavar='RC=N[,RC=N...]', help='e.g. VCPU=2,MEMORY_MB=2048')
    p.add_argument('--required', action='append', default=[],
                   type=payloads.trait_arg, metavar='TRAIT')
    p.add_argument('--forbidden', action='append', default=[],
                   type=payloads.trait_arg, metavar='TRAIT')
    p.add_argument('--limit', type=payloads.positive_int)
    providers = _group(sub, 'provider', 'resource providers in placement')
    p = _leaf(providers, 'list', provider_list, 'resource providers')
    p.add_argument('--name')
    p.add_argument('--host')
    p = _leaf(providers, 'show', provider_show,
              'a provider with inventories, usages, traits, aggregates')
    p.add_argument('uuid', metavar='UUID', type=payloads.uuid_arg)
    p = _leaf(providers, 'delete', provider_delete,
              'decommission a provider (refused while allocated; operators)')
    p.add_argument('uuid', metavar='UUID', type=payloads.uuid_arg)
    for noun, field, option, kind, help_text in (
            ('trait', 'traits', '--trait', payloads.trait_arg,
             "replace a provider's traits (none given: remove them all)"),
            ('aggregate', 'aggregates', '--aggregate', payloads.uuid_arg,
             "replace a provider's aggregates (none given: leave them all)")):
        p = _leaf(_group(providers, noun, f"a provider's {field}"), 'set',
                  _operator_write(f'set_{field}', field),
                  f'{help_text}; operators')
        p.add_argument('uuid', metavar='UUID', type=payloads.uuid_arg)
        p.add_argument(option, dest=field, action='append', default=[],
                       type=kind, metavar=noun.upper(),
                       help='repeat for each; the set replaces the old one')
        p.add_argument('--generation', type=payloads.non_negative_int,
                       help="the provider's generation to write at "
                            '(default: its current one)')


def add_commands(subparsers) -> None:
    _host_commands(subparsers)
    _claim_commands(subparsers)
    _migration_commands(subparsers)
    _placement_commands(subparsers)
