"""The move verbs: resize, cold and live migration, evacuation, and how each
ends (confirm, revert, abort, finish), as pure transitions.

Counted as Nova counts them: an incoming move holds the new flavor under the
migration until ``finish_move`` gives it to the instance; a finished
same-host resize keeps the old flavor under the migration for a revert until
it is confirmed; the source of a cross-host move that finished at its
destination (``update_migration(status='finished', migration=...)`` there)
holds the old flavor under the migration alone, the instance gone.  An
instance has one move in progress here at a time: a second one is refused
while the first is active, and supersedes it only once it is in ``error``.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import fitting
from nova_rt.compute import usage
from nova_rt.compute.ledger import Change, Ledger
from nova_rt.compute.transitions import (
    NO_FLAVOR, Context, InstanceRecord, MigrationRecord, end, tracked, wire)

# -- claims ----------------------------------------------------------------------

def resize_claim(ledger: Ledger, view, ctx: Context, instance: objects.Instance,
                 migration: objects.Migration) -> Change:
    flavor = migration.new_flavor or migration.old_flavor or instance.flavor
    return _move_claim(ledger, view, ctx, instance, migration, flavor)


def rebuild_claim(ledger: Ledger, view, ctx: Context, instance: objects.Instance,
                  migration: objects.Migration) -> Change:
    return _move_claim(ledger, view, ctx, instance, migration, instance.flavor,
                       status='pre-migrating')


def live_migration_claim(ledger: Ledger, view, ctx: Context,
                         instance: objects.Instance,
                         migration: objects.Migration,
                         page_size_kb: Optional[int] = None) -> Change:
    """``page_size_kb``: the source's guest page size, which the destination
    must back the guest's memory with (see ``payloads``)."""
    return _move_claim(ledger, view, ctx, instance, migration, instance.flavor,
                       page_size_kb=page_size_kb)


def _move_claim(ledger, view, ctx, inst, mig, flavor, status=None,
                page_size_kb=None) -> Change:
    if mig.instance_uuid != inst.uuid:
        raise exception.InvalidInput(
            reason=f'migration.instance_uuid {mig.instance_uuid} is not '
                   f'instance.uuid {inst.uuid}')
    if not objects.migration_in_progress(mig.status):
        raise exception.InvalidInput(
            reason=f'migration.status {mig.status!r} is not in progress')
    _check_dest(view, mig)
    existing = _existing_move_claim(ledger, view, mig, flavor)
    if existing is not None:
        return Change(result=existing)
    others = [r for r in ledger.moves_of(inst.uuid) if r.uuid != mig.uuid]
    active = [r for r in others if r.migration.status != 'error']
    if active:
        # Two moves of one instance cannot both hold here: only one would
        # count, and the other caller would hold a claim that reserves nothing.
        raise exception.ClaimConflict(
            reason=f'instance {inst.uuid} already has migration '
                   f'{active[0].uuid} in progress here (status '
                   f'{active[0].migration.status!r}); abort or end that one '
                   f'first')
    # As Nova: an older migration in error gives up what it holds to the new one.
    freed = collections.Counter()
    for old in others:
        if old.claim is not None:
            freed.update(old.claim.resources)
    claim = fitting.fit_claim(view, inst, flavor, claim_id=ctx.new_id(),
                              migration_uuid=mig.uuid,
                              page_size_kb=page_size_kb, freed=freed)
    if status:
        mig = dataclasses.replace(mig, status=status)
    new = MigrationRecord(migration=mig, instance=inst, seq=ledger.seq + 1,
                          claim=claim)
    superseded = tuple(dataclasses.replace(r, claim=None, pci_requests=())
                       for r in others if r.claim is not None or r.pci_requests)
    return Change(put_migrations=(new,) + superseded, result=wire(view, claim),
                  log=f'Claimed {claim.describe()} for {mig.migration_type} '
                      f'{mig.uuid} of instance {inst.uuid}')


def _check_dest(view, mig: objects.Migration) -> None:
    if mig.dest_node != view.config.node:
        raise exception.NodeNotFound(nodename=mig.dest_node,
                                     node=view.config.node)
    if mig.dest_compute != view.config.host:
        raise exception.InvalidInput(
            reason=f'migration.dest_compute {mig.dest_compute!r} is not '
                   f'this host ({view.config.host!r})')


def _existing_move_claim(ledger, view, mig, flavor) -> Optional[dict]:
    rec = ledger.migrations.get(mig.uuid)
    if rec is None:
        return None
    if rec.ended:
        raise exception.ClaimConflict(
            reason=f'migration {mig.uuid} already ended here with status '
                   f'{rec.migration.status!r}')
    claimed = rec.claim.flavor if rec.claim else None
    if rec.outbound or rec.migration.instance_uuid != mig.instance_uuid or (
            claimed is not None and not usage.same_flavor(claimed, flavor)):
        raise exception.ClaimConflict(
            reason=f'migration {mig.uuid} is already tracked here with '
                   f'another instance, flavor or direction')
    claim = rec.claim
    if claim is None:   # finished: the claim is the instance's now
        inst = ledger.instances.get(mig.instance_uuid)
        claim = inst.claim if inst else None
    return wire(view, claim) if claim else None


# -- status and ends -------------------------------------------------------------

def _tracked(ledger: Ledger, migration_uuid: str) -> MigrationRecord:
    return tracked(ledger.migrations, migration_uuid,
                   exception.MigrationNotFound, 'migration_uuid')


def update_migration(ledger: Ledger, view, ctx: Context, migration_uuid: str,
                     status: str,
                     migration: Optional[objects.Migration] = None) -> Change:
    rec = ledger.migrations.get(migration_uuid)
    if rec is None:
        if migration is not None and status == 'finished':
            return _depart(ledger, view, ctx, migration_uuid, migration)
        raise exception.MigrationNotFound(migration_uuid=migration_uuid)
    if rec.ended:
        return Change()     # ended: remembered, nothing more changes
    if rec.outbound and status == 'reverted':
        return _undo_move(ledger, view, ctx, rec, status)
    new = end(rec, status, ctx.now)
    log = None if new.in_progress else (
        f'Migration {migration_uuid} is {status}; its claim here is freed')
    return Change(put_migrations=(new,), log=log)


def _depart(ledger, view, ctx, migration_uuid, mig) -> Change:
    """The source hears that a cross-host move finished at its destination:
    the instance has left, its old flavor stays held under the migration
    until confirm (freed) or revert (the instance back)."""
    host = view.config.host
    if mig.uuid != migration_uuid:
        raise exception.InvalidInput(
            reason=f'migration.uuid {mig.uuid} is not migration_uuid '
                   f'{migration_uuid}')
    if mig.source_compute != host or mig.dest_compute == host:
        raise exception.MigrationNotFound(migration_uuid=migration_uuid)
    inst_rec = ledger.instances.get(mig.instance_uuid)
    if inst_rec is None:
        raise exception.MigrationNotFound(migration_uuid=migration_uuid)
    mig = dataclasses.replace(mig, status='finished')
    new = MigrationRecord(migration=mig, instance=inst_rec.instance,
                          seq=ledger.seq + 1, claim=inst_rec.claim,
                          outbound=True, pci_requests=inst_rec.pci_requests)
    return Change(put_migrations=(new,), drop_instances=(inst_rec.uuid,),
                  log=f'Instance {inst_rec.uuid} left for {mig.dest_compute}; '
                      f'its old flavor stays held under migration {mig.uuid} '
                      f'until confirm or revert')


def drop_move_claim_at_source(ledger: Ledger, view, ctx: Context,
                              migration: objects.Migration) -> Change:
    mig = migration
    rec = ledger.migrations.get(mig.uuid)
    if rec is not None and rec.ended:
        return Change()
    host = view.config.host
    inst_rec = ledger.instances.get(mig.instance_uuid)
    log = f'Confirmed migration {mig.uuid} at the source'
    if mig.source_compute == mig.dest_compute == host and rec is not None:
        if rec.finished or inst_rec is None:
            # The instance runs on the new flavor; the old one is let go.
            return Change(put_migrations=(end(rec, 'confirmed', ctx.now),),
                          log=log)
        # Confirmed before finish_move: the new flavor becomes the instance's.
        return _instance_takes_migration_claim(ctx, rec, inst_rec, 'confirmed',
                                               log=log, finished=True)
    if rec is None:
        rec = MigrationRecord(
            migration=mig, seq=ledger.seq + 1,
            instance=inst_rec.instance if inst_rec else objects.Instance(
                uuid=mig.instance_uuid, project_id='', user_id='',
                flavor=mig.old_flavor or mig.new_flavor or NO_FLAVOR))
    drop = (inst_rec.uuid,) if inst_rec is not None else ()
    return Change(put_migrations=(end(rec, 'confirmed', ctx.now),),
                  drop_instances=drop, log=log)


def drop_move_claim_at_dest(ledger: Ledger, view, ctx: Context,
                            migration_uuid: str) -> Change:
    rec = _tracked(ledger, migration_uuid)
    if rec.ended:
        return Change()
    return _undo_move(ledger, view, ctx, rec, 'reverted')


def abort_move_claim(ledger: Ledger, view, ctx: Context,
                     migration_uuid: str) -> Change:
    rec = ledger.migrations.get(migration_uuid)
    if rec is None or rec.ended:
        return Change()     # never claimed here, or already dropped
    return _undo_move(ledger, view, ctx, rec, 'failed')


def _undo_move(ledger, view, ctx, rec: MigrationRecord, status: str) -> Change:
    """Give back what the move brought to this host (or, at the source of a
    departed instance, give the instance back what it left)."""
    log = f'Migration {rec.uuid} {status} here; what it brought is given back'
    if rec.outbound:
        # It ran here before it left: back, it runs (its devices allocated).
        inst = rec.instance
        if inst.vm_state == 'building':
            inst = dataclasses.replace(inst, vm_state='active')
        back = InstanceRecord(instance=inst, claim=rec.claim,
                              pci_requests=rec.pci_requests)
        return Change(put_instances=(back,),
                      put_migrations=(end(rec, status, ctx.now),),
                      log=f'Migration {rec.uuid} {status}: instance '
                          f'{rec.instance.uuid} is back on its old flavor')
    inst_rec = ledger.instances.get(rec.migration.instance_uuid)
    if not rec.finished or inst_rec is None:
        return Change(put_migrations=(end(rec, status, ctx.now),), log=log)
    if rec.migration.source_compute == view.config.host:
        # Finished same-host resize: back to the old flavor the migration
        # kept; the new one goes.
        return _instance_takes_migration_claim(ctx, rec, inst_rec, status,
                                               log=log)
    # Finished cross-host move: the instance leaves this host.
    return Change(put_migrations=(end(rec, status, ctx.now),),
                  drop_instances=(inst_rec.uuid,), log=log)


def _instance_takes_migration_claim(ctx, rec, inst_rec, status, log=None,
                                    **migration_changes) -> Change:
    """The instance gives up its claim and holds the migration's instead.

    A same-host move that ends: confirmed before it finished (the new
    flavor stays) or reverted after it finished (the old flavor, kept by
    the migration for that, comes back).
    """
    flavor = rec.claim.flavor if rec.claim else inst_rec.instance.flavor
    inst = dataclasses.replace(inst_rec.instance, flavor=flavor)
    new_inst = dataclasses.replace(inst_rec, instance=inst, claim=rec.claim)
    new_mig = end(rec, status, ctx.now, **migration_changes)
    return Change(put_instances=(new_inst,), put_migrations=(new_mig,), log=log)


def finish_move(ledger: Ledger, view, ctx: Context, migration_uuid: str) -> Change:
    rec = _tracked(ledger, migration_uuid)
    if rec.finished or rec.ended:
        return Change()
    if rec.outbound:
        raise exception.InvalidInput(
            reason=f'migration {migration_uuid} left this host: finish_move '
                   f'is for its destination')
    mig = rec.migration
    inst_rec = ledger.instances.get(mig.instance_uuid)
    claim = rec.claim
    flavor = claim.flavor if claim else rec.instance.flavor
    status = {'evacuation': 'done',
              'live-migration': 'completed'}.get(mig.migration_type, 'finished')
    vm_state = 'resized' if mig.migration_type in (
        'resize', 'migration') else rec.instance.vm_state
    if vm_state == 'building':
        vm_state = 'active'
    log = (f'Finished {mig.migration_type} {migration_uuid}: instance '
           f'{mig.instance_uuid} lives here on flavor {flavor.name!r}')
    if mig.source_compute == view.config.host and inst_rec is not None:
        # The instance takes the new claim; the migration keeps the old one
        # for a revert until confirm.
        inst = dataclasses.replace(inst_rec.instance, flavor=flavor,
                                   vm_state=vm_state, task_state=None)
        new_inst = dataclasses.replace(inst_rec, instance=inst, claim=claim)
        new_mig = end(rec, status, ctx.now, claim=inst_rec.claim, finished=True)
    else:
        inst = dataclasses.replace(rec.instance, flavor=flavor,
                                   vm_state=vm_state, task_state=None)
        new_inst = InstanceRecord(instance=inst, claim=claim)
        new_mig = end(rec, status, ctx.now, claim=None, finished=True)
    return Change(put_instances=(new_inst,), put_migrations=(new_mig,), log=log)
