"""Reporting the tracker's view to placement.

The tracker says what the node looks like (``placement_view()``); this module
turns it into the placement RPC calls of the spec and sends only what changed
since the last successful send, with a full replace now and then so that
anything placement lost or leaked heals.  It keeps at most one unsent view:
while placement or RabbitMQ is away a newer view simply replaces the older one,
and the whole current state goes out (as a full replace) once they are back.

Nothing here holds the tracker's lock; the service calls ``report`` from its
audit thread after the audit swapped its new view in.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid as uuidlib
from typing import Callable, Mapping, Optional

from nova_rt.compute import ratios as ratios_mod

LOG = logging.getLogger(__name__)

ROOT_UUID_KEY = 'root_provider_uuid'
RATIOS_KEY = 'allocation_ratios'
#: project_id and user_id of the consumers of what the host itself uses.
HOST_USAGE_OWNER = 'nova-rt-host'
#: Standard traits every compute node carries.
NODE_TRAITS = ('COMPUTE_NODE',)

#: Failures that mean "placement or the bus is not there now": keep the view
#: and try again later.  Matched by name because they may arrive as remote
#: exceptions or as oslo.messaging's own classes.
_UNREACHABLE = frozenset((
    'MessagingTimeout', 'MessageDeliveryFailure', 'MessagingException',
    'MessageUndeliverable',
    'ServiceUnavailable', 'ConnectionError', 'ConnectionRefusedError',
    'OperationalError', 'OSError', 'TimeoutError',
    # placement's answer while its database cannot be used
    'HypervisorUnavailable'))
#: Pause before the first retry of a report that did not go through; it
#: doubles with each failure in a row, up to the caller's cap, so that a
#: placement that just appeared hears the report within a second or two.
RETRY_FIRST = 0.5


def error_name(exc: BaseException) -> str:
    """The spec's class name of an error, however it crossed the wire."""
    exc_type = getattr(exc, 'exc_type', None)   # oslo.messaging RemoteError
    if exc_type:
        return exc_type
    name = type(exc).__name__
    return name[:-len('_Remote')] if name.endswith('_Remote') else name


def pci_provider_uuid(root_uuid: str, name: str) -> str:
    """Child providers get uuids derived from the root: stable, nothing stored."""
    return str(uuidlib.uuid5(uuidlib.UUID(root_uuid), name))


def host_usage_consumer(root_uuid: str, index: int) -> str:
    """The consumer of the ``index``-th share of what the host itself uses."""
    return str(uuidlib.uuid5(uuidlib.UUID(root_uuid), f'host-usage-{index}'))


def _utcnow_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class PlacementReporter:
    """Owns this node's provider tree in placement.

    ``placement`` is a ``nova_rt.placement.rpcapi.PlacementAPI`` (or anything
    with the same methods); ``store`` has ``get_meta``/``set_meta``.
    """

    def __init__(self, placement, store, host: str, *,
                 report_pci: bool = False,
                 full_refresh_interval: float = 300,
                 max_conflict_retries: int = 3,
                 clock: Callable[[], float] = time.monotonic):
        self.placement = placement
        self.store = store
        self.host = host
        self.report_pci = report_pci
        self.full_refresh_interval = full_refresh_interval
        self.max_conflict_retries = max_conflict_retries
        self.clock = clock
        self.root_uuid = self._load_root_uuid()
        self._generations: dict = {}
        self._generations_known = False
        self._sent_providers: Optional[dict] = None   # uuid -> provider
        self._sent_allocations: Optional[dict] = None
        self._sent_version: Optional[int] = None
        self._last_full: Optional[float] = None
        self._latest: Optional[tuple] = None          # (version, view)
        self.messages_sent = 0
        #: The last attempt failed because placement or the bus was away.
        self.unreachable = False
        #: Reports in a row that did not go through.
        self.failures = 0

    # -- identity and ratios -------------------------------------------------

    def _load_root_uuid(self) -> str:
        root_uuid = self.store.get_meta(ROOT_UUID_KEY)
        if not root_uuid:
            # Generated once and kept: a restart must be the same provider,
            # never a second node with the same name.
            root_uuid = str(uuidlib.uuid4())
            self.store.set_meta(ROOT_UUID_KEY, root_uuid)
        return root_uuid

    def resolve_ratios(self, configured: Mapping[str, Optional[float]],
                       initial: Mapping[str, float]) -> dict:
        """The ratios the tracker must use, as Nova decides them.

        Asks placement for the provider's current ratios only when an option
        is unset.  With placement away, the last ratios this node used are
        kept (they are in the local store), so claims go on unchanged.
        """
        placement_ratios = None
        if any(configured.get(rc) is None for rc in ratios_mod.CLASSES):
            try:
                provider = self.placement.get_resource_provider(
                    self._context(), uuid=self.root_uuid)
            except Exception as exc:
                name = error_name(exc)
                if name == 'ResourceProviderNotFound':
                    placement_ratios = None
                else:
                    LOG.warning('Placement unreachable while reading '
                                'allocation ratios (%s); keeping the last '
                                'known ones', name)
                    placement_ratios = self.store.get_meta(RATIOS_KEY)
            else:
                placement_ratios = {
                    rc: inv.get('allocation_ratio')
                    for rc, inv in (provider.get('inventories') or {}).items()
                    if rc in ratios_mod.CLASSES} or None
        ratios = ratios_mod.effective(configured, initial, placement_ratios)
        if self.store.get_meta(RATIOS_KEY) != ratios:
            self.store.set_meta(RATIOS_KEY, ratios)
        return ratios

    # -- building the messages -----------------------------------------------

    def providers_from_view(self, view: dict) -> dict:
        """uuid -> provider dict of the spec, without generation."""
        traits = sorted(set(view.get('traits') or ()) | set(NODE_TRAITS))
        providers = {self.root_uuid: {
            'uuid': self.root_uuid, 'name': view['node'], 'parent_uuid': None,
            'inventories': dict(view.get('inventories') or {}),
            'traits': traits}}
        if self.report_pci:
            for pci in view.get('pci_providers') or ():
                child = pci_provider_uuid(self.root_uuid, pci['name'])
                providers[child] = {
                    'uuid': child, 'name': pci['name'],
                    'parent_uuid': self.root_uuid,
                    'inventories': dict(pci.get('inventories') or {}),
                    'traits': sorted(pci.get('traits') or ())}
        return providers

    def allocations_from_view(self, view: dict, providers: dict) -> dict:
        """consumer -> {project_id, user_id, resources: {rp_uuid: {rc: n}}}."""
        root_classes = set(providers[self.root_uuid]['inventories'])
        children = [p for p in providers.values()
                    if p['uuid'] != self.root_uuid]
        allocations = {}
        for consumer, alloc in (view.get('allocations') or {}).items():
            by_provider: dict = {}
            for rc, amount in (alloc.get('resources') or {}).items():
                target = self.root_uuid
                if rc not in root_classes:
                    # PCI classes live on child providers; take the first
                    # child that offers the class.
                    target = next((c['uuid'] for c in children
                                   if rc in c['inventories']), None)
                    if target is None:
                        continue
                by_provider.setdefault(target, {})[rc] = amount
            # PCI devices held by the consumer, on the provider of their PF
            # (the tracker's view names it), when they are reported.
            for name, amounts in (alloc.get('child_resources') or {}).items():
                child = pci_provider_uuid(self.root_uuid, name)
                if child in providers:
                    by_provider.setdefault(child, {}).update(amounts)
            allocations[consumer] = {'project_id': alloc.get('project_id'),
                                     'user_id': alloc.get('user_id'),
                                     'resources': by_provider}
        # What the host itself uses (domains no claim explains), as usage of
        # consumers of its own: the units the tracker counts it in.
        for index, resources in enumerate(view.get('host_usage') or ()):
            allocations[host_usage_consumer(self.root_uuid, index)] = {
                'project_id': HOST_USAGE_OWNER, 'user_id': HOST_USAGE_OWNER,
                'resources': {self.root_uuid: dict(resources)}}
        return allocations

    # -- sending --------------------------------------------------------------

    def submit(self, version: int, view: dict) -> None:
        """Keep ``view`` as the latest state (replacing any older unsent one)."""
        self._latest = (version, view)

    def full_due(self) -> bool:
        if self._last_full is None:
            return True
        if not self.full_refresh_interval:
            return False
        return self.clock() - self._last_full >= self.full_refresh_interval

    @property
    def sent_version(self) -> Optional[int]:
        return self._sent_version

    @property
    def pending(self) -> bool:
        """Whether the latest view has not reached placement yet."""
        return (self._latest is not None
                and self._latest[0] != self._sent_version)

    def retry_delay(self, cap: float) -> float:
        """How long to wait before retrying a report that did not go
        through: back-off from ``RETRY_FIRST``, at most ``cap``."""
        return min(cap, RETRY_FIRST * 2 ** max(0, min(self.failures, 32) - 1))

    def report(self, version: Optional[int] = None, view: Optional[dict] = None,
               force_full: bool = False) -> bool:
        """Send what changed; return whether anything was sent.

        Never raises for an unreachable placement: the view stays pending
        and goes out, as a full replace, at the next call that gets through.
        """
        if view is not None:
            self.submit(version, view)
        if self._latest is None:
            return False
        version, view = self._latest
        full = force_full or self.full_due()
        if not full and not self.pending:
            return False
        for attempt in range(self.max_conflict_retries + 1):
            try:
                sent = self._send(view, full)
            except Exception as exc:
                name = error_name(exc)
                if name == 'ResourceProviderGenerationConflict':
                    LOG.info('Placement generation conflict (attempt %d); '
                             'refreshing and retrying', attempt + 1)
                    self._generations_known = False
                    full = True
                    continue
                self.unreachable = name in _UNREACHABLE or 'Timeout' in name
                if self.unreachable:
                    LOG.warning('Placement unreachable (%s); the latest view '
                                'is kept and sent when it is back', name)
                else:
                    LOG.error('Placement refused the report: %s: %s',
                              name, exc)
                self._forget_sent()
                self.failures += 1
                return False
            self._sent_version = version
            self.unreachable = False
            self.failures = 0
            if full:
                self._last_full = self.clock()
            return sent
        LOG.error('Placement generation conflicts persisted after %d '
                  'attempts; trying again at the next audit',
                  self.max_conflict_retries + 1)
        self._forget_sent()
        self.failures += 1
        return False

    def _forget_sent(self) -> None:
        # Whether a half-sent report landed is unknown: resync fully.
        self._sent_providers = self._sent_allocations = None
        self._sent_version = None
        self._generations_known = False
        self._last_full = None

    def _send(self, view: dict, full: bool) -> bool:
        ctx = self._context()
        providers = self.providers_from_view(view)
        allocations = self.allocations_from_view(view, providers)
        if not self._generations_known:
            self._refresh_generations(ctx)
        sent = False
        if full or providers != self._sent_providers:
            wire = [dict(p, generation=self._generations.get(uuid))
                    for uuid, p in providers.items()]
            # Root first: placement creates parents before children.
            wire.sort(key=lambda p: p['parent_uuid'] is not None)
            self._count()
            self._generations = dict(self.placement.report_provider_tree(
                ctx, host=self.host, providers=wire))
            self._sent_providers = providers
            sent = True
        if full or self._sent_allocations is None:
            changed, send_full = allocations, True
        else:
            changed = {c: a for c, a in allocations.items()
                       if self._sent_allocations.get(c) != a}
            for gone in set(self._sent_allocations) - set(allocations):
                old = self._sent_allocations[gone]
                changed[gone] = {'project_id': old['project_id'],
                                 'user_id': old['user_id'], 'resources': {}}
            send_full = False
        if send_full or changed:
            self._count()
            result = self.placement.report_allocations(
                ctx, host=self.host, root_uuid=self.root_uuid,
                generation=self._generations.get(self.root_uuid),
                allocations=changed, full=send_full)
            if isinstance(result, dict):
                self._generations.update(result)
            self._sent_allocations = allocations
            sent = True
        return sent

    def _refresh_generations(self, ctx) -> None:
        try:
            listed = self.placement.list_resource_providers(
                ctx, in_tree=self.root_uuid)
        except Exception as exc:
            if error_name(exc) != 'ResourceProviderNotFound':
                raise
            listed = []
        self._count()
        self._generations = {p['uuid']: p.get('generation') for p in listed}
        self._generations_known = True

    def heartbeat(self) -> bool:
        """Liveness cast; a failure is logged and forgotten."""
        try:
            self.placement.heartbeat(self._context(), host=self.host,
                                     root_uuid=self.root_uuid,
                                     sent_at=_utcnow_iso())
        except Exception as exc:
            LOG.warning('Heartbeat to placement failed: %s', error_name(exc))
            return False
        return True

    def _count(self) -> None:
        self.messages_sent += 1

    @staticmethod
    def _context() -> dict:
        return {'request_id': 'req-' + str(uuidlib.uuid4())}
