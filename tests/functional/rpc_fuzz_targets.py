"""The two daemons as fuzzing targets (``rpc_fuzz.Target``).

``compute_target(stack)``: a running ``compute_stack`` (placement and one
nova-rt-compute on libvirt's test driver).  ``placement_target(handle)``: a
running nova-rt-placement (``placement_fixtures.running_placement``).  Each
method starts from fresh things to refer to (an instance claimed on the
host and a resize of it; a host's provider tree with allocations), so that
valid calls and their mutations meet real records as well as unknown uuids.
"""

from __future__ import annotations

import uuid

from hypothesis import strategies as st

from nova_rt.compute import methods as compute_methods
from nova_rt.placement import methods as placement_methods
from tests.functional import rpc_fuzz
from tests.functional.compute import fixtures as compute_fixtures
from tests.functional.placement import fixtures as placement_fixtures

#: Keys of the payloads that the tracker parses, per method and place.
_SPECS = ['hw:cpu_policy', 'hw:numa_nodes', 'hw:mem_page_size',
          'pci_passthrough:alias', 'hw:pci_numa_affinity_policy',
          'resources:VCPU', 'resources:MEMORY_MB', 'resources:CUSTOM_FUZZ',
          'resources:', 'hw:cpu_thread_policy', 'hw:numa_cpus.0']
_IMAGE = ['hw_numa_nodes', 'hw_mem_page_size', 'hw_cpu_policy']
_CLAIM = {'instance.flavor.extra_specs': _SPECS,
          'instance.image_properties': _IMAGE}
COMPUTE_PARSED = {
    'instance_claim': _CLAIM, 'rebuild_claim': _CLAIM,
    'live_migration_claim': _CLAIM,
    'resize_claim': dict(_CLAIM, **{'migration.new_flavor.extra_specs': _SPECS}),
    'claim_pci_devices': {'alias_counts': ['nic', 'gpu', '']},
}


def new_uuid() -> str:
    return str(uuid.uuid4())


def _caller(cctxt):
    """``call(method, context, arguments)`` for any argument names.

    ``RPCClient.call(ctxt, method, **kwargs)`` cannot take arguments named
    ``self``, ``ctxt`` or ``method``; they travel under a prefix and lose it
    in the message (oslo.messaging's ``_make_message``, on this instance).
    """
    make = cctxt._make_message
    cctxt._make_message = lambda ctxt, method, args: make(
        ctxt, method, {k[1:]: v for k, v in args.items()})

    def call(method, context, arguments):
        return cctxt.call(context, method,
                          **{'_' + k: v for k, v in arguments.items()})
    return call


# -- compute ------------------------------------------------------------------

_FLAVOR = st.fixed_dictionaries({
    'name': st.sampled_from(['m1.tiny', 'm1.small']),
    'vcpus': st.integers(1, 2), 'memory_mb': st.integers(1, 256),
    'root_gb': st.integers(0, 1), 'ephemeral_gb': st.just(0),
    'swap': st.sampled_from([0, 512]),
    'extra_specs': st.sampled_from([
        {}, {'hw:cpu_policy': 'shared'}, {'hw:numa_nodes': '1'},
        {'hw:mem_page_size': 'small'}, {'resources:VCPU': '1'},
        {'pci_passthrough:alias': 'nic:1'}]),
})


def _instance(uuids):
    return st.fixed_dictionaries({
        'uuid': uuids, 'project_id': st.just('fuzz-p'),
        'user_id': st.just('fuzz-u'), 'flavor': _FLAVOR,
        'vm_state': st.sampled_from(['building', 'active']),
        'task_state': st.none(), 'os_type': st.just('linux'),
        'is_volume_backed': st.booleans(),
        'image_properties': st.sampled_from([{}, {'hw_numa_nodes': '1'}]),
    })


def _migration(uuids, instance_uuids, host, mtype):
    return st.fixed_dictionaries({
        'uuid': uuids, 'instance_uuid': instance_uuids,
        'migration_type': st.just(mtype) if mtype else st.sampled_from(
            ['resize', 'migration', 'live-migration', 'evacuation']),
        'status': st.sampled_from(['pre-migrating', 'migrating', 'finished',
                                   'confirming', 'error']),
        'source_compute': st.sampled_from(['elsewhere', host]),
        'source_node': st.sampled_from(['elsewhere', host]),
        'dest_compute': st.just(host), 'dest_node': st.just(host),
        'old_flavor': _FLAVOR, 'new_flavor': _FLAVOR,
    })


def _tiny_instance():
    return {'uuid': new_uuid(), 'project_id': 'fuzz-p', 'user_id': 'fuzz-u',
            'flavor': {'name': 'm1.tiny', 'vcpus': 1, 'memory_mb': 64,
                       'root_gb': 0, 'ephemeral_gb': 0, 'swap': 0,
                       'extra_specs': {}},
            'vm_state': 'building', 'task_state': None}


def _compute_seeds(stack) -> dict:
    host, api = stack.host, stack.api

    def empty_host():
        # What the fuzzed calls claimed before (random uuids that passed),
        # so that every method finds room for valid claims.
        hs = api.get_host_state(stack.ctx(), host)
        for mig in hs['migrations']:
            api.abort_move_claim(stack.ctx(), host, migration_uuid=mig)
        for uuid_ in hs['instances']:
            api.abort_instance_claim(stack.ctx(), host, instance_uuid=uuid_)

    def fresh():
        """An instance claimed here and a same-host resize of it."""
        empty_host()
        inst = _tiny_instance()
        api.instance_claim(stack.ctx(), host, instance=inst)
        mig = {'uuid': new_uuid(), 'instance_uuid': inst['uuid'],
               'migration_type': 'resize', 'status': 'pre-migrating',
               'source_compute': host, 'source_node': host,
               'dest_compute': host, 'dest_node': host,
               'old_flavor': inst['flavor'],
               'new_flavor': dict(inst['flavor'], name='m1.tiny2',
                                  memory_mb=128)}
        try:
            api.resize_claim(stack.ctx(), host, instance=inst, migration=mig)
        except Exception:    # a full host: the migration uuid is still known
            pass
        instances = st.sampled_from([inst['uuid']]) | st.uuids().map(str)
        migrations = st.sampled_from([mig['uuid']]) | st.uuids().map(str)
        return inst, mig, instances, migrations

    def seed(name):
        def strategy():
            inst, mig, instances, migrations = fresh()
            fixed = st.fixed_dictionaries
            return {
                'instance_claim': fixed(
                    {'instance': _instance(instances)},
                    optional={'nodename': st.sampled_from([None, host, 'x'])}),
                'abort_instance_claim': fixed({'instance_uuid': instances}),
                'update_instance': fixed(
                    {'instance_uuid': instances,
                     'vm_state': st.sampled_from(['active', 'stopped',
                                                  'deleted', 'error'])},
                    optional={'task_state': st.sampled_from(
                        [None, 'spawning', 'resize_prep'])}),
                'resize_claim': fixed({
                    'instance': st.just(inst) | _instance(instances),
                    'migration': _migration(migrations, instances, host,
                                            'resize')}),
                'rebuild_claim': fixed({
                    'instance': _instance(instances),
                    'migration': _migration(migrations, instances, host,
                                            'evacuation')}),
                'live_migration_claim': fixed({
                    'instance': _instance(instances),
                    'migration': _migration(migrations, instances, host,
                                            'live-migration')}),
                'update_migration': fixed(
                    {'migration_uuid': migrations,
                     'status': st.sampled_from(['migrating', 'finished',
                                                'error', 'failed'])},
                    optional={'migration': st.none() | st.just(mig)}),
                'drop_move_claim_at_source': fixed({
                    'migration': st.just(mig) | _migration(
                        migrations, instances, host, None)}),
                'drop_move_claim_at_dest': fixed({'migration_uuid': migrations}),
                'abort_move_claim': fixed({'migration_uuid': migrations}),
                'finish_move': fixed({'migration_uuid': migrations}),
                'claim_pci_devices': fixed({
                    'instance_uuid': instances,
                    'alias_counts': st.sampled_from([{'nic': 1}, {'gpu': 2}]),
                    'request_id': st.uuids().map(str)}),
                'free_pci_devices': fixed({
                    'instance_uuid': instances,
                    'addresses': st.sampled_from([['0000:81:00.1'], []])}),
                'get_host_state': st.just({}),
                'run_audit': st.just({}),
            }[name]
        return strategy

    return {method.name: seed(method.name) for method in compute_methods.TABLE}


def compute_target(stack):
    """A Target on a running ``ComputeStack``; ``close()`` the transport."""
    api, transport = compute_fixtures.compute_client(
        stack.placement.exchange, plain=True, timeout=30,
        url=compute_fixtures.transport_url_of(stack.placement))
    call = _caller(api.client.prepare(server=stack.host))

    def state():
        hs = stack.api.get_host_state(stack.ctx(), stack.host)
        hs.pop('last_audit', None)
        return hs

    target = rpc_fuzz.Target(
        table=compute_methods.TABLE, call=call, state=state,
        alive=lambda: stack.compute.proc.poll() is None,
        seeds=_compute_seeds(stack), parsed=COMPUTE_PARSED)
    return target, transport


# -- placement ------------------------------------------------------------------

def _inventory(total):
    return {'total': total, 'reserved': 0, 'min_unit': 1, 'max_unit': total,
            'step_size': 1, 'allocation_ratio': 1.0}


class _PlacementWorld:
    """A host's tree (a root, two PCI children), two consumers, a trait and
    an aggregate: what the calls of one method refer to."""

    def __init__(self, api, ctx):
        self.api, self.ctx = api, ctx
        self.host = 'fuzz-' + uuid.uuid4().hex[:8]
        self.root, self.children = new_uuid(), [new_uuid(), new_uuid()]
        self.consumers = [new_uuid(), new_uuid()]
        self.aggregate = new_uuid()
        providers = self.providers(None)
        gens = api.report_provider_tree(ctx, host=self.host,
                                        providers=providers)
        gens = api.report_allocations(
            ctx, host=self.host, root_uuid=self.root, generation=gens[self.root],
            full=True, allocations={
                c: {'project_id': 'fuzz-p', 'user_id': 'fuzz-u',
                    'resources': {self.root: {'VCPU': 1},
                                  self.children[0]: {'CUSTOM_PCI_FUZZ': 1}}}
                for c in self.consumers})
        self.generations = gens
        gens = api.set_aggregates(ctx, uuid=self.root,
                                  aggregates=[self.aggregate],
                                  generation=gens[self.root])
        self.generations.update(gens)

    @property
    def uuids(self):
        return [self.root, *self.children]

    def providers(self, generations):
        generations = generations or {}
        return [{'uuid': self.root, 'name': self.host, 'parent_uuid': None,
                 'generation': generations.get(self.root),
                 'inventories': {'VCPU': _inventory(16),
                                 'MEMORY_MB': _inventory(8192)},
                 'traits': ['COMPUTE_NODE']}] + [
            {'uuid': child, 'name': f'{self.host}_pci_{i}',
             'parent_uuid': self.root, 'generation': generations.get(child),
             'inventories': {'CUSTOM_PCI_FUZZ': _inventory(4)},
             'traits': ['CUSTOM_FUZZ']}
            for i, child in enumerate(self.children)]

    def state(self) -> dict:
        listed = sorted(
            (p['uuid'], p['name'], p['host'], p['generation'], p['parent_uuid'],
             p['root_uuid']) for p in self.api.list_resource_providers(self.ctx))
        providers = {}
        for rp in self.uuids:
            try:
                got = self.api.get_resource_provider(self.ctx, uuid=rp)
            except Exception as error:
                got = rpc_fuzz.error_name(error)
            if isinstance(got, dict):
                got.pop('alive', None)
                got.pop('last_heartbeat', None)
            providers[rp] = got
        return {'providers': listed, 'tree': providers,
                'allocations': {c: self.api.get_allocations(self.ctx,
                                                            consumer_uuid=c)
                                for c in self.consumers},
                'usages': self.api.get_usages(self.ctx, project_id='fuzz-p')}


def _placement_seeds(api, ctx, worlds: list) -> dict:
    def seed(name):
        def strategy():
            world = _PlacementWorld(api, ctx)
            worlds[:] = [world]
            fixed, gens = st.fixed_dictionaries, world.generations
            providers = st.sampled_from(world.uuids) | st.uuids().map(str)
            consumers = st.sampled_from(world.consumers) | st.uuids().map(str)
            generation = st.sampled_from(
                [gens[world.root], gens[world.root] + 1, 0, 1])
            traits = st.lists(st.sampled_from(
                ['COMPUTE_NODE', 'CUSTOM_FUZZ', 'HW_CPU_X86_AVX2']),
                unique=True, max_size=3)
            amounts = st.dictionaries(st.sampled_from(['VCPU', 'MEMORY_MB']),
                                      st.integers(1, 4), min_size=1)
            return {
                'report_provider_tree': fixed({
                    'host': st.sampled_from([world.host, 'intruder']),
                    'providers': st.sampled_from([
                        world.providers(gens), world.providers(None),
                        world.providers(gens)[:1]])}),
                'report_allocations': fixed({
                    'host': st.sampled_from([world.host, 'intruder']),
                    'root_uuid': st.sampled_from([world.root]) | providers,
                    'generation': generation,
                    'allocations': st.dictionaries(consumers, fixed({
                        'project_id': st.just('fuzz-p'),
                        'user_id': st.just('fuzz-u'),
                        'resources': st.dictionaries(providers, amounts,
                                                     max_size=2)}),
                        max_size=3),
                    'full': st.booleans()}),
                'heartbeat': fixed({
                    'host': st.just(world.host), 'root_uuid': providers,
                    'sent_at': st.sampled_from(['2026-01-01T00:00:00+00:00',
                                                '2026-01-01T00:00:00'])}),
                'list_resource_providers': fixed({}, optional={
                    'name': st.sampled_from([world.host, 'nope']),
                    'host': st.just(world.host), 'in_tree': providers,
                    'member_of': st.just([world.aggregate]),
                    'required': traits, 'resources': amounts}),
                'get_resource_provider': fixed({'uuid': providers}),
                'get_usages': fixed({}, optional={
                    'uuid': providers, 'project_id': st.just('fuzz-p')}),
                'get_allocations': fixed({'consumer_uuid': consumers}),
                'get_allocation_candidates': fixed(
                    {'resources': amounts}, optional={
                        'required': traits, 'forbidden': traits,
                        'member_of': st.just([world.aggregate]),
                        'limit': st.sampled_from([None, 1, 5])}),
                'set_traits': fixed({'uuid': providers, 'traits': traits,
                                     'generation': generation}),
                'set_aggregates': fixed({
                    'uuid': providers,
                    'aggregates': st.lists(st.uuids().map(str), max_size=2),
                    'generation': generation}),
                # Random uuids: deleting the world would leave nothing to
                # refer to for the rest of the method.
                'delete_resource_provider': fixed(
                    {'uuid': st.uuids().map(str)
                     | st.sampled_from([world.root])}),
            }[name]
        return strategy

    return {method.name: seed(method.name)
            for method in placement_methods.TABLE}


def placement_target(handle):
    """A Target on a running placement; ``close()`` the transport."""
    transport = placement_fixtures.make_transport(handle.exchange,
                                                  handle.transport_url)
    from nova_rt.placement import rpcapi
    api = rpcapi.PlacementAPI(transport, timeout=30)
    ctx = {'request_id': 'req-fuzz-state'}
    worlds: list = []
    call = _caller(api.client.prepare())
    target = rpc_fuzz.Target(
        table=placement_methods.TABLE, call=call,
        state=lambda: worlds[0].state(),
        alive=lambda: all(p.poll() is None for p in handle.processes),
        seeds=_placement_seeds(api, ctx, worlds))
    return target, transport
