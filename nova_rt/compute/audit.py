"""The audit of the resource tracker and configuration changes.

The audit gathers from libvirt and udev without the tracker's lock, works out
unmanaged and missing domains from a snapshot of the records, and swaps the
result in under the lock (DESIGN.md principle 2).  Mixed into
``tracker.ResourceTracker``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import time

from nova_rt import exception
from nova_rt.compute import usage

LOG = logging.getLogger(__name__)


class AuditMixin:
    """``run_audit`` and the options that take effect at the next audit."""

    def _gather_pci(self):
        if self.pci_source is None:
            return None
        try:
            return list(self.pci_source())
        except Exception:   # udev trouble degrades only the PCI part
            LOG.exception('PCI discovery failed; keeping the last known devices')
            return None

    def _gather_host(self):
        if self.host_source is None:
            return None, None
        try:
            host = self.host_source.get_host_info()
            domains = self.host_source.list_domains()
        except exception.HypervisorUnavailable as exc:
            if self._hypervisor_connected:
                LOG.warning('Audit: libvirt unreachable (%s); serving claims '
                            'from the last known inventory', exc)
            self._hypervisor_connected = False
            return None, None
        except Exception:
            LOG.exception('Audit: reading the host from libvirt failed')
            self._hypervisor_connected = False
            return None, None
        self._hypervisor_connected = True
        return host, domains

    def run_audit(self) -> dict:
        """Reconcile with libvirt and udev; return the contract's summary."""
        started = time.monotonic()
        host, domains = self._gather_host()
        discovered = self._gather_pci()
        if discovered is not None and discovered == self._last_discovered:
            # Same bus as last time (compared outside the lock): nothing to
            # reconcile; hotplug events are applied as they come.
            discovered = None
        with self._lock:
            if self._pending_config is not None:
                self._apply_config(self._pending_config)
            instances = dict(self._instances)
            migrations = dict(self._migrations)
            seq = self._change_seq
        # Work out the new view from the snapshot, outside the lock.
        moving = {r.migration.instance_uuid for r in migrations.values()
                  if r.in_progress}
        unmanaged = missing_now = None
        if domains is not None:
            present = {d.uuid for d in domains}
            unmanaged = [d for d in domains if d.active
                         and d.uuid not in instances and d.uuid not in moving]
            missing_now = {u for u, r in instances.items()
                           if r.holds and u not in present and u not in moving
                           and r.instance.vm_state != 'building'}
        expected = collections.Counter()
        for rec in instances.values():
            if rec.claim is not None:
                usage.add_resources(expected, rec.claim.resources)
        for rec in migrations.values():
            if rec.claim is not None and rec.in_progress:
                usage.add_resources(expected, rec.claim.resources)

        changed = False
        with self._lock:
            if host is not None and host != self._host:
                try:
                    self._set_host(host)
                    self._rebuild_usage()
                    changed = True
                except exception.ConfigError as exc:
                    LOG.error('Audit: host not usable with this configuration '
                              '(%s); keeping the last known inventory', exc)
                    host = None
            if discovered is not None and self._pci.set_devices(discovered):
                changed = True
            if discovered is not None:
                self._last_discovered = discovered
                self._pci_count = len(self._pci.devices())
            if unmanaged is not None:
                # Claims made since the snapshot explain their domains too.
                unmanaged = [d for d in unmanaged
                             if d.uuid not in self._instances]
                unmanaged_used = usage.unmanaged_usage(unmanaged)
                if unmanaged_used != self._unmanaged_used:
                    changed = True
                self._unmanaged, self._unmanaged_used = unmanaged, unmanaged_used
                self._missing = {
                    u: self._missing.get(u, 0) + 1 for u in missing_now
                    if u in self._instances}
            if seq == self._change_seq and +expected != +self._used:
                LOG.warning('Audit: usage counters drifted from the claims '
                            '(%s != %s); rebuilt', dict(self._used),
                            dict(expected))
                self._rebuild_usage()
                changed = True
            if changed:
                self._bump()
            missing = [u for u, n in self._missing.items()
                       if n >= self.config.missing_domain_audits]
            duration = time.monotonic() - started
            summary = {
                'duration_s': round(duration, 6),
                'instances': len(self._instances),
                'migrations': sum(1 for r in self._migrations.values()
                                  if r.in_progress),
                'unmanaged_domains': len(self._unmanaged),
                'missing_domains': len(missing),
                'pci_devices': self._pci_count,
                'changed': changed,
                'reported': False,
            }
            self._last_audit = {'at': _iso(self.clock()),
                                'duration_s': summary['duration_s'],
                                'missing_domains': sorted(missing)}
        if host is not None and changed:
            self.store.set_meta('host_info', host.to_dict())
        if missing:
            LOG.warning('Audit: %d instances hold claims but have no domain '
                        'here (kept, not freed): %s', len(missing),
                        ', '.join(sorted(missing)[:10]))
        return summary

    # ============================================================ config

    def apply_config(self, config) -> None:
        """New options (SIGHUP); they take effect at the next audit."""
        with self._lock:
            self._pending_config = config
        self.audit_wanted.set()

    def set_allocation_ratios(self, ratios: dict) -> None:
        with self._lock:
            config = self._pending_config or self.config
            self._apply_config(dataclasses.replace(
                config, allocation_ratios=dict(ratios)))

    def _apply_config(self, config) -> None:
        self._pending_config = None
        if config == self.config:
            return
        old = self.config
        self.config = config
        if self._host is not None:
            try:
                self._set_host(self._host)
            except exception.ConfigError as exc:
                LOG.error('New configuration refused: %s', exc)
                self.config = old
                self._set_host(self._host)
                return
            self._rebuild_usage()
        self._bump()


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).isoformat()
