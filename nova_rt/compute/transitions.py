"""The instance and PCI verbs of the compute RPC API, as pure transitions.

Each verb is a function of (ledger, host view, context, request) that returns
a ``ledger.Change`` (records put and dropped, the call's result, a log line)
or raises one of the contract's errors; it changes nothing itself.  The
tracker shell applies the change durably and swaps it in.  The move verbs are
in ``moves``; both share the helpers here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import claims
from nova_rt.compute import fitting
from nova_rt.compute import usage
from nova_rt.compute.ledger import Change, Ledger

InstanceRecord = claims.InstanceRecord
MigrationRecord = claims.MigrationRecord


@dataclasses.dataclass(frozen=True)
class Context:
    """The world a transition may read: the time, and fresh claim ids."""
    now: float
    new_id: Callable[[], str]


def wire(view, claim: claims.Claim) -> dict:
    return claim.to_wire(view.config.host, view.config.node)


#: The flavor of a record that needs none: a migration confirmed here that
#: never was, or one that ended (never counted again).
NO_FLAVOR = objects.Flavor(name='unknown', vcpus=1, memory_mb=1, root_gb=0,
                           ephemeral_gb=0, swap=0)


def end(rec: MigrationRecord, status: str, now: float, **changes) -> MigrationRecord:
    """``rec`` with ``status``; a migration that ends holds nothing more."""
    mig = dataclasses.replace(rec.migration, status=status)
    ended_at = None if objects.migration_in_progress(status) else now
    if ended_at is not None:
        # Remembered only to answer a repeated call: what says which
        # migration it was stays, its flavors go (thousands are kept).
        mig = dataclasses.replace(mig, old_flavor=None, new_flavor=None)
        changes.update(claim=None, pci_requests=(), instance=dataclasses.replace(
            rec.instance, flavor=NO_FLAVOR))
    return dataclasses.replace(rec, migration=mig, ended_at=ended_at, **changes)


def forget_instance(ledger: Ledger, ctx: Context, rec: InstanceRecord,
                    migration_status: str, log: Optional[str] = None) -> Change:
    """Drop an instance and end its moves here: nothing of it stays held."""
    ended = tuple(end(r, migration_status, ctx.now)
                  for r in ledger.moves_of(rec.uuid))
    return Change(put_migrations=ended, drop_instances=(rec.uuid,), log=log)


# -- instances -------------------------------------------------------------------

def instance_claim(ledger: Ledger, view, ctx: Context,
                   instance: objects.Instance,
                   nodename: Optional[str] = None) -> Change:
    view.check_node(nodename)
    rec = ledger.instances.get(instance.uuid)
    if rec is not None:
        if not usage.same_flavor(rec.instance.flavor, instance.flavor):
            raise exception.ClaimConflict(
                reason=f'instance {instance.uuid} is already tracked here '
                       f'with flavor {rec.instance.flavor.name!r}')
        if rec.instance.image_properties != instance.image_properties:
            # The image's hw_* properties shape the claim as the flavor does.
            raise exception.ClaimConflict(
                reason=f'instance {instance.uuid} is already tracked here '
                       f'with other image properties')
        if rec.claim is not None:
            return Change(result=wire(view, rec.claim))
    if not objects.holds_resources(instance.vm_state, instance.task_state):
        raise exception.InvalidInput(
            reason=f'instance.vm_state {instance.vm_state!r} with task_state '
                   f'{instance.task_state!r} holds no resources and cannot '
                   f'be claimed')
    claim = fitting.fit_claim(view, instance, instance.flavor,
                              claim_id=ctx.new_id())
    new = InstanceRecord(instance=instance, claim=claim,
                         pci_requests=rec.pci_requests if rec else ())
    return Change(put_instances=(new,), result=wire(view, claim),
                  log=f'Claimed {claim.describe()} for instance {instance.uuid}')


def abort_instance_claim(ledger: Ledger, view, ctx: Context,
                         instance_uuid: str) -> Change:
    rec = ledger.instances.get(instance_uuid)
    if rec is None:
        return Change()
    return forget_instance(ledger, ctx, rec, 'failed',
                           log=f'Aborted the claim of instance {instance_uuid}')


def update_instance(ledger: Ledger, view, ctx: Context, instance_uuid: str,
                    vm_state: str, task_state: Optional[str] = None) -> Change:
    rec = _tracked_instance(ledger, instance_uuid)
    if vm_state == 'deleted':
        return forget_instance(ledger, ctx, rec, 'cancelled',
                               log=f'Instance {instance_uuid} deleted; freed')
    inst = dataclasses.replace(rec.instance, vm_state=vm_state,
                               task_state=task_state)
    holds = objects.holds_resources(vm_state, task_state)
    if holds and rec.claim is None:
        claim = fitting.fit_claim(view, inst, inst.flavor, claim_id=ctx.new_id())
        new = InstanceRecord(instance=inst, claim=claim,
                             pci_requests=rec.pci_requests)
        log = f'Claimed {claim.describe()} again for instance {instance_uuid}'
    elif not holds and rec.claim is not None:
        new = InstanceRecord(instance=inst, claim=None)
        log = f'Instance {instance_uuid} is {vm_state}; its claim is freed'
    else:
        new = dataclasses.replace(rec, instance=inst)
        log = None
    return Change(put_instances=(new,), log=log)


def _tracked_instance(ledger: Ledger, instance_uuid: str) -> InstanceRecord:
    return tracked(ledger.instances, instance_uuid, exception.InstanceNotFound,
                   'instance_uuid')


def tracked(records, uuid: str, not_found, argument: str):
    """The record of ``uuid``, or the contract's not-found error."""
    rec = records.get(uuid)
    if rec is None:
        raise not_found(**{argument: uuid})
    return rec


# -- PCI ---------------------------------------------------------------------

def claim_pci_devices(ledger: Ledger, view, ctx: Context, instance_uuid: str,
                      alias_counts: dict, request_id: str) -> Change:
    rec = _tracked_instance(ledger, instance_uuid)
    for req in rec.pci_requests:
        if req.request_id == request_id:
            if req.alias_counts != dict(alias_counts):
                raise exception.ClaimConflict(
                    reason=f'PCI request {request_id} was made with other '
                           f'aliases: {req.alias_counts}')
            return Change(result=[dict(d) for d in req.devices])
    req = fitting.fit_pci_request(view, rec, alias_counts, request_id)
    new = dataclasses.replace(rec, pci_requests=rec.pci_requests + (req,))
    addresses = [d['address'] for d in req.devices]
    return Change(put_instances=(new,), result=[dict(d) for d in req.devices],
                  log=f'PCI devices {addresses} attached to instance '
                      f'{instance_uuid}')


def free_pci_devices(ledger: Ledger, view, ctx: Context, instance_uuid: str,
                     addresses: list) -> Change:
    rec = _tracked_instance(ledger, instance_uuid)
    owned = {d['address'] for d in rec.claim.pci_devices} if rec.claim else set()
    for req in rec.pci_requests:
        owned.update(d['address'] for d in req.devices)
    for address in addresses:
        if address not in owned:
            raise exception.PciDeviceNotFound(
                address=address,
                reason=f'it is not held by instance {instance_uuid}')
    gone = set(addresses)

    def keep(devices):
        return tuple(d for d in devices if d['address'] not in gone)

    claim = rec.claim
    if claim is not None:
        claim = dataclasses.replace(claim, pci_devices=keep(claim.pci_devices))
    requests = tuple(dataclasses.replace(r, devices=keep(r.devices))
                     for r in rec.pci_requests)
    new = dataclasses.replace(rec, claim=claim, pci_requests=requests)
    return Change(put_instances=(new,),
                  log=f'PCI devices {sorted(gone)} of instance '
                      f'{instance_uuid} freed')
