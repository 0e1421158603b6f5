"""Move claims of the resource tracker: resize, cold and live migration,
evacuation, and how each ends (confirm, revert, abort, finish).

Counted as Nova counts them: only the newest migration of an instance holds
anything; an incoming move holds the new flavor until ``finish_move`` gives
it to the instance; a finished same-host resize keeps the old flavor for a
revert until it is confirmed.  Mixed into ``tracker.ResourceTracker``, whose
lock every public method here takes.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Optional

from nova_rt import exception
from nova_rt import objects
from nova_rt.compute import claims as claims_mod
from nova_rt.compute import usage

LOG = logging.getLogger(__name__)

MigrationRecord = claims_mod.MigrationRecord
InstanceRecord = claims_mod.InstanceRecord


#: The flavor of a migration confirmed here without one (never counted).
_NO_FLAVOR = objects.Flavor(name='unknown', vcpus=1, memory_mb=1, root_gb=0,
                            ephemeral_gb=0, swap=0)


class MoveClaimsMixin:
    """The migration methods of the compute RPC API."""

    def _check_dest(self, mig: objects.Migration) -> None:
        if mig.dest_node != self.config.node:
            raise exception.NodeNotFound(nodename=mig.dest_node,
                                         node=self.config.node)
        if mig.dest_compute != self.config.host:
            raise exception.InvalidInput(
                reason=f'migration.dest_compute {mig.dest_compute!r} is not '
                       f'this host ({self.config.host!r})')

    def _existing_move_claim(self, mig: objects.Migration,
                             flavor: objects.Flavor) -> Optional[dict]:
        rec = self._migrations.get(mig.uuid)
        if rec is None:
            return None
        if rec.ended_at is not None:
            raise exception.ClaimConflict(
                reason=f'migration {mig.uuid} already ended here with status '
                       f'{rec.migration.status!r}')
        claimed = rec.claim.flavor if rec.claim else None
        if rec.migration.instance_uuid != mig.instance_uuid or (
                claimed is not None and not usage.same_flavor(claimed, flavor)):
            raise exception.ClaimConflict(
                reason=f'migration {mig.uuid} is already tracked here with '
                       f'another instance or flavor')
        claim = rec.claim
        if claim is None:   # finished: the claim is the instance's now
            inst = self._instances.get(mig.instance_uuid)
            claim = inst.claim if inst else None
        return claim.to_wire(self.config.host, self.config.node) if claim else None

    def _move_claim(self, instance: dict, migration: dict, flavor_of,
                    status: Optional[str] = None, page_size_kb=None) -> dict:
        inst = objects.Instance.from_dict(instance)
        mig = objects.Migration.from_dict(migration)
        if mig.instance_uuid != inst.uuid:
            raise exception.InvalidInput(
                reason=f'migration.instance_uuid {mig.instance_uuid} is not '
                       f'instance.uuid {inst.uuid}')
        if not objects.migration_in_progress(mig.status):
            raise exception.InvalidInput(
                reason=f'migration.status {mig.status!r} is not in progress')
        flavor = flavor_of(inst, mig)
        with self._lock:
            self._check_dest(mig)
            existing = self._existing_move_claim(mig, flavor)
            if existing is not None:
                return existing
            # Only the newest migration of an instance counts (as Nova):
            # older ones still in progress give up what they hold.
            superseded = [r for r in self._migrations.values()
                          if r.migration.instance_uuid == inst.uuid
                          and r.in_progress and r.claim is not None]
            freed = collections.Counter()
            for old in superseded:
                usage.add_resources(freed, old.claim.resources)
            claim = self._new_claim(inst, flavor, migration_uuid=mig.uuid,
                                    page_size_kb=page_size_kb,
                                    extra_used=dict(freed))
            if status:
                mig = dataclasses.replace(mig, status=status)
            self._seq += 1
            new = MigrationRecord(migration=mig, instance=inst, seq=self._seq,
                                  claim=claim)
            replaced = [dataclasses.replace(r, claim=None) for r in superseded]
            self._commit(migrations=[new] + replaced)
            for old in superseded:
                self._release(old.uuid, old, old.claim)
            self._hold(mig.uuid, new, claim)
            LOG.info('Claimed %s for %s %s of instance %s', claim.describe(),
                     mig.migration_type, mig.uuid, inst.uuid)
            return claim.to_wire(self.config.host, self.config.node)

    def resize_claim(self, instance: dict, migration: dict) -> dict:
        def new_flavor(inst, mig):
            return mig.new_flavor or mig.old_flavor or inst.flavor
        return self._move_claim(instance, migration, new_flavor)

    def rebuild_claim(self, instance: dict, migration: dict) -> dict:
        return self._move_claim(instance, migration,
                                lambda inst, mig: inst.flavor,
                                status='pre-migrating')

    def live_migration_claim(self, instance: dict, migration: dict) -> dict:
        # The destination must back guest memory with the pages the source
        # uses: when the caller passes the source's NUMA topology (an extra
        # instance field, ignored otherwise) its page size is required here.
        page_size_kb = None
        source_topology = instance.get('numa_topology') or {}
        sizes = {c.get('pagesize_kb') for c in source_topology.get('cells', [])
                 if isinstance(c, dict)}
        sizes.discard(None)
        if len(sizes) == 1:
            page_size_kb = sizes.pop()
        return self._move_claim(instance, migration,
                                lambda inst, mig: inst.flavor,
                                page_size_kb=page_size_kb)

    def _tracked_migration(self, migration_uuid: str) -> MigrationRecord:
        rec = self._migrations.get(migration_uuid)
        if rec is None:
            raise exception.MigrationNotFound(migration_uuid=migration_uuid)
        return rec

    def _end(self, rec: MigrationRecord, status: str, **changes) -> MigrationRecord:
        mig = dataclasses.replace(rec.migration, status=status)
        ended_at = None if objects.migration_in_progress(status) else self.clock()
        return dataclasses.replace(rec, migration=mig, ended_at=ended_at,
                                   **changes)

    def update_migration(self, migration_uuid: str, status: str) -> None:
        with self._lock:
            rec = self._tracked_migration(migration_uuid)
            if rec.ended_at is not None:
                return None     # ended: remembered, nothing more changes
            if objects.migration_in_progress(status):
                self._commit(migrations=[self._end(rec, status)])
                return None
            new = self._end(rec, status, claim=None)
            self._commit(migrations=[new])
            if rec.claim is not None:
                self._release(rec.uuid, rec, rec.claim)
            LOG.info('Migration %s is %s; its claim here is freed',
                     migration_uuid, status)
        return None

    def drop_move_claim_at_source(self, migration: dict) -> None:
        mig = objects.Migration.from_dict(migration)
        with self._lock:
            rec = self._migrations.get(mig.uuid)
            if rec is not None and rec.ended_at is not None:
                return None
            same_host = (mig.source_compute == mig.dest_compute
                         == self.config.host)
            inst_rec = self._instances.get(mig.instance_uuid)
            if same_host and rec is not None:
                self._confirm_same_host(rec, inst_rec)
            else:
                self._confirm_cross_host(mig, rec, inst_rec)
            LOG.info('Confirmed migration %s at the source', mig.uuid)
        return None

    def _confirm_same_host(self, rec, inst_rec) -> None:
        if rec.finished or inst_rec is None:
            # The instance runs on the new flavor; the old one is let go.
            new = self._end(rec, 'confirmed', claim=None)
            self._commit(migrations=[new])
            if rec.claim is not None:
                self._release(rec.uuid, rec, rec.claim)
            return
        # Confirmed before finish_move: the new flavor becomes the instance's.
        self._instance_takes_migration_claim(rec, inst_rec, 'confirmed',
                                             finished=True)

    def _instance_takes_migration_claim(self, rec, inst_rec, status,
                                        **migration_changes) -> None:
        """The instance gives up its claim and holds the migration's instead.

        A same-host move that ends: confirmed before it finished (the new
        flavor stays) or reverted after it finished (the old flavor, kept by
        the migration for that, comes back).
        """
        inst = dataclasses.replace(inst_rec.instance,
                                   flavor=rec.claim.flavor if rec.claim
                                   else inst_rec.instance.flavor)
        new_inst = dataclasses.replace(inst_rec, instance=inst, claim=rec.claim)
        new_mig = self._end(rec, status, claim=None, **migration_changes)
        self._commit(instances=[new_inst], migrations=[new_mig])
        if inst_rec.claim is not None:
            self._release(inst_rec.uuid, inst_rec, inst_rec.claim)
        if rec.claim is not None:
            self._account(rec.uuid, rec, rec.claim, -1)
            self._account(inst_rec.uuid, new_inst, rec.claim, +1)

    def _confirm_cross_host(self, mig, rec, inst_rec) -> None:
        if rec is None:
            self._seq += 1
            rec = MigrationRecord(
                migration=mig, seq=self._seq,
                instance=inst_rec.instance if inst_rec else objects.Instance(
                    uuid=mig.instance_uuid, project_id='', user_id='',
                    flavor=mig.old_flavor or mig.new_flavor or _NO_FLAVOR))
        new_mig = self._end(rec, 'confirmed', claim=None)
        drop = [inst_rec.uuid] if inst_rec is not None else []
        self._commit(migrations=[new_mig], drop_instances=drop)
        if rec.claim is not None and rec.in_progress:
            self._release(rec.uuid, rec, rec.claim)
        if inst_rec is not None:
            self._release_instance(inst_rec)

    def drop_move_claim_at_dest(self, migration_uuid: str) -> None:
        with self._lock:
            rec = self._tracked_migration(migration_uuid)
            if rec.ended_at is not None:
                return None
            self._undo_move(rec, 'reverted')
            LOG.info('Reverted migration %s at the destination', migration_uuid)
        return None

    def abort_move_claim(self, migration_uuid: str) -> None:
        with self._lock:
            rec = self._migrations.get(migration_uuid)
            if rec is None or rec.ended_at is not None:
                return None     # never claimed here, or already dropped
            self._undo_move(rec, 'failed')
            LOG.info('Aborted the move claim of migration %s', migration_uuid)
        return None

    def _undo_move(self, rec: MigrationRecord, status: str) -> None:
        """Give back what the move brought to this host."""
        inst_rec = self._instances.get(rec.migration.instance_uuid)
        same_host = rec.migration.source_compute == self.config.host
        if not rec.finished or inst_rec is None:
            new = self._end(rec, status, claim=None)
            self._commit(migrations=[new])
            if rec.claim is not None:
                self._release(rec.uuid, rec, rec.claim)
        elif same_host:
            # Finished same-host resize: back to the old flavor the
            # migration kept; the new one goes.
            self._instance_takes_migration_claim(rec, inst_rec, status)
        else:
            # Finished cross-host move: the instance leaves this host.
            new_mig = self._end(rec, status, claim=None)
            self._commit(migrations=[new_mig], drop_instances=[inst_rec.uuid])
            self._release_instance(inst_rec)

    def finish_move(self, migration_uuid: str) -> None:
        with self._lock:
            rec = self._tracked_migration(migration_uuid)
            if rec.finished or rec.ended_at is not None:
                return None
            mig = rec.migration
            inst_rec = self._instances.get(mig.instance_uuid)
            claim = rec.claim
            flavor = claim.flavor if claim else rec.instance.flavor
            status = {'evacuation': 'done',
                      'live-migration': 'completed'}.get(mig.migration_type,
                                                         'finished')
            vm_state = 'resized' if mig.migration_type in (
                'resize', 'migration') else rec.instance.vm_state
            if vm_state == 'building':
                vm_state = 'active'
            same_host = mig.source_compute == self.config.host
            if same_host and inst_rec is not None:
                # The instance takes the new claim; the migration keeps the
                # old one for a revert until confirm.
                inst = dataclasses.replace(inst_rec.instance, flavor=flavor,
                                           vm_state=vm_state, task_state=None)
                new_inst = dataclasses.replace(inst_rec, instance=inst,
                                               claim=claim)
                new_mig = self._end(rec, status, claim=inst_rec.claim,
                                    finished=True)
                self._commit(instances=[new_inst], migrations=[new_mig])
                # Take both claims off their old consumers before giving
                # them to the new ones (a consumer holds one allocation).
                if inst_rec.claim is not None:
                    self._account(inst_rec.uuid, inst_rec, inst_rec.claim, -1)
                if claim is not None:
                    self._account(rec.uuid, rec, claim, -1)
                    self._account(inst.uuid, new_inst, claim, +1)
                if inst_rec.claim is not None:
                    if new_mig.in_progress:
                        self._account(rec.uuid, new_mig, inst_rec.claim, +1)
                    else:
                        self._pci.free(claim_key=inst_rec.claim.claim_id)
            else:
                inst = dataclasses.replace(rec.instance, flavor=flavor,
                                           vm_state=vm_state, task_state=None)
                new_inst = InstanceRecord(instance=inst, claim=claim)
                new_mig = self._end(rec, status, claim=None, finished=True)
                self._commit(instances=[new_inst], migrations=[new_mig])
                if inst_rec is not None:
                    self._release_instance(inst_rec)
                if claim is not None:
                    self._account(rec.uuid, rec, claim, -1)
                    self._account(inst.uuid, new_inst, claim, +1)
            if claim is not None:
                self._pci.mark_allocated(claim.claim_id)
            LOG.info('Finished %s %s: instance %s lives here on flavor %r',
                     mig.migration_type, migration_uuid, mig.instance_uuid,
                     flavor.name)
        return None
