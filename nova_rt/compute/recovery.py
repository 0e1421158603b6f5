"""A lost or damaged local store, rebuilt from placement and libvirt.

``nova-rt-manage store recover`` (``gather``, ``rebuild.plan``, ``write``)
reads placement's allocations on this node's provider tree and libvirt's
domains, and writes a new store with the records that hold them, keeping
the root provider's uuid; ``rebuild.Plan.not_rebuilt`` says what could not
be rebuilt.  Nothing is written before everything is read, and a file that
is replaced is moved aside, never deleted.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Optional

from nova_rt import exception
from nova_rt.compute import rebuild
from nova_rt.compute import store as store_mod

_STORE_SUFFIXES = ('', '-wal', '-shm')


def node_trees(placement, context, host: str) -> list:
    """``[(root, {provider uuid: provider})]``: the provider trees
    placement has for this node (roots named after it and reported by it),
    each provider as ``get_resource_provider`` gives it (with ``usages``)."""
    trees = []
    for root in placement.list_resource_providers(context, name=host):
        if root.get('parent_uuid') is not None or root.get('host') != host:
            continue
        providers = {
            p['uuid']: placement.get_resource_provider(context, uuid=p['uuid'])
            for p in placement.list_resource_providers(
                context, in_tree=root['uuid'])}
        trees.append((providers.get(root['uuid'], root), providers))
    return trees


# ------------------------------------------------------------------ reading


def read_libvirt(conf) -> dict:
    """Host, domains and their Nova metadata, as ``Sources`` fields."""
    from nova_rt.virt import host as virt_host
    source = virt_host.LibvirtHost(
        conf.libvirt.connection_uri, conf.instances_path,
        conf.libvirt.disk_pool, conf.libvirt.reconnect_max_interval)
    try:
        host_info = source.get_host_info()
        domains = {d.uuid: d for d in source.list_domains()}
        nova = {}
        for uuid in domains:
            try:
                xml = source.connection.lookupByUUIDString(uuid).XMLDesc(0)
            except Exception:   # undefined meanwhile: it just has none
                continue
            found = rebuild.nova_metadata(xml)
            if found is not None:
                nova[uuid] = found
    except exception.HypervisorUnavailable as exc:
        return {'libvirt_error': str(exc)}
    finally:
        source.stop()
    return {'host_info': host_info, 'domains': domains, 'nova': nova}


def consumers_from_database(url: str, root_uuid: str) -> dict:
    """Every consumer of the tree with its owner, read from placement's
    database (the RPC API has no such listing)."""
    import sqlalchemy as sa
    from sqlalchemy import orm

    from nova_rt.placement import db
    from nova_rt.placement import models
    if url.startswith('sqlite:///') and not os.path.exists(url[10:]):
        raise exception.InvalidInput(
            reason=f'[placement_database] connection {db.safe_url(url)}: no '
                   'such file')
    provider = orm.aliased(models.ResourceProvider)
    root = orm.aliased(models.ResourceProvider)
    alloc, consumer = models.Allocation, models.Consumer
    query = (sa.select(consumer.uuid, consumer.project_id, consumer.user_id,
                       provider.uuid, alloc.resource_class, alloc.used)
             .join(alloc, alloc.consumer_id == consumer.id)
             .join(provider, provider.id == alloc.resource_provider_id)
             .join(root, root.id == provider.root_provider_id)
             .where(root.uuid == root_uuid))
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        engine.dispose()
    found: dict = {}
    for uuid, project_id, user_id, rp_uuid, rc, n in rows:
        entry = found.setdefault(
            uuid, rebuild.Consumer(uuid, {}, project_id, user_id))
        entry.resources.setdefault(rp_uuid, {})[rc] = n
    return found


def consumers_over_rpc(placement, context, providers: dict,
                       candidates) -> dict:
    """The candidates (libvirt's domains) that are consumers of the tree."""
    found = {}
    for uuid in sorted(candidates):
        allocations = placement.get_allocations(context, consumer_uuid=uuid)
        here = {rp: dict(amounts) for rp, amounts in allocations.items()
                if rp in providers and amounts}
        if here:
            found[uuid] = rebuild.Consumer(uuid, here)
    return found


def _database_configured(conf) -> bool:
    from oslo_config import cfg
    try:
        location = conf.get_location('connection', 'placement_database')
    except (AttributeError, cfg.NoSuchOptError):
        return False
    return location is not None and \
        location.location is not cfg.Locations.opt_default


def gather(conf, placement, context) -> rebuild.Sources:
    """Read placement and libvirt for this node; raise ``LocalStoreError``
    when there is nothing to rebuild from, or no way to tell which tree."""
    path = store_mod.store_path(conf.state_path)
    trees = node_trees(placement, context, conf.host)
    if not trees:
        raise exception.LocalStoreError(path=path, reason=(
            f'placement has no provider for node {conf.host}, so there is '
            'nothing to rebuild: nova-rt-compute starts as a new host'))
    held = [(root, providers) for root, providers in trees
            if rebuild.tree_usage(providers)]
    if len(held) > 1:
        raise exception.LocalStoreError(path=path, reason=(
            f'placement has {len(held)} root providers for node {conf.host} '
            'holding allocations (' + ', '.join(r['uuid'] for r, _ in held)
            + '); which one is this host\'s cannot be told'))
    root, providers = held[0] if held else max(
        trees, key=lambda t: t[0].get('last_heartbeat') or '')
    found = read_libvirt(conf)
    if _database_configured(conf):
        from nova_rt.placement import db
        url = conf.placement_database.connection
        consumers = consumers_from_database(url, root['uuid'])
        where = f'the placement database {db.safe_url(url)}'
        listed_all = True
    else:
        consumers = consumers_over_rpc(placement, context, providers,
                                       found.get('domains', {}))
        where = 'placement over RPC (by the uuids of libvirt\'s domains)'
        listed_all = False
    return rebuild.Sources(root=root, providers=providers,
                           consumers=consumers, consumers_from=where,
                           listed_all=listed_all, **found)


# ------------------------------------------------------------------ writing


def holders(path: str) -> list:
    """Pids of the processes that have the store open (Linux /proc)."""
    wanted = {os.path.abspath(path + suffix) for suffix in _STORE_SUFFIXES}
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            fds = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f'/proc/{pid}/fd/{fd}') in wanted:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return sorted(set(pids) - {os.getpid()})


def move_aside(path: str, now: Optional[float] = None) -> Optional[str]:
    """Rename the store at ``path`` and its -wal and -shm (which would
    corrupt a new file of that name) to ``<path>.before-recovery-<time>``;
    the new name, or None when there was nothing."""
    if not any(os.path.exists(path + suffix) for suffix in _STORE_SUFFIXES):
        return None
    stamp = datetime.datetime.fromtimestamp(
        time.time() if now is None else now).strftime('%Y%m%dT%H%M%S')
    aside = f'{path}.before-recovery-{stamp}'
    for suffix in _STORE_SUFFIXES:
        if os.path.exists(path + suffix):
            os.rename(path + suffix, aside + suffix)
    return aside


def write(path: str, recovered: rebuild.Plan,
          now: Optional[float] = None) -> Optional[str]:
    """Write ``recovered`` as the store at ``path``, in one transaction into
    a new file that then replaces the old one.  The old one is moved aside
    (``move_aside``), never deleted; returns where it went."""
    fresh = path + '.recovering'
    for suffix in _STORE_SUFFIXES:
        if os.path.exists(fresh + suffix):
            os.unlink(fresh + suffix)
    store = store_mod.ClaimStore(fresh)
    try:
        changes = store_mod.Changes()
        for record in recovered.records:
            changes.put_instance(record)
        for key, value in recovered.meta.items():
            changes.set_meta(key, value)
        store.apply(changes)
        store.compact()     # every page in the main file: it moves alone
    finally:
        store.close()
    if os.geteuid() == 0:
        # Run as root, the file would be root's, and the daemon (the state
        # directory's owner) could not open it.
        owner = os.stat(os.path.dirname(os.path.abspath(path)))
        os.chown(fresh, owner.st_uid, owner.st_gid)
    aside = move_aside(path, now)
    os.replace(fresh, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)     # the rename itself survives a power loss
    finally:
        os.close(directory)
    return aside
