"""A lost or damaged local store: refuse to start, then rebuild what can be.

The compute daemon is the authority for its host's allocations (DESIGN.md,
principle 3): its first full report replaces whatever placement holds for
its provider tree.  That heals a leaked allocation, and it would just as
quietly erase every claim of the host if the daemon started on an empty
store.  So:

- ``check_at_start`` runs right after the store is opened.  A store that
  knows this node (it holds the root provider's uuid) is trusted as it is.
  One that does not (missing, 0 bytes, emptied, or new) makes the daemon ask
  placement first.  Allocations on a provider tree of this node: refuse to
  start (``LocalStoreLost``), naming the fix.  The tree with nothing
  allocated: adopt its root provider, so that a lost store of an idle host
  does not leave a second provider of the same name.  No tree: a new host.
  Placement cannot be asked: wait up to ``START_WAIT`` seconds, then refuse.
  A host placement has never heard of gets no claims anyway, so waiting for
  placement costs a new host nothing, and an old one keeps its allocations,
  as a Nova operator expects.  Libvirt's domains play no part: a new host
  may run domains nobody tracks.

- ``nova-rt-manage store recover`` (``gather``, ``plan``, ``write``)
  rebuilds a store from placement's allocations on this node's tree and
  libvirt's domains, keeps the root provider's uuid, and says what it could
  not rebuild (``Plan.not_rebuilt``).
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import threading
import time
import uuid as uuidlib
from typing import Optional

from nova_rt import exception
from nova_rt.compute import rebuild
from nova_rt.compute import reporter
from nova_rt.compute import store as store_mod

LOG = logging.getLogger(__name__)

#: How long a start on a store that does not know this node waits for
#: placement (the systemd unit allows 120 s for the whole start).
START_WAIT = 60.0
RETRY_INTERVAL = 5.0
_STORE_SUFFIXES = ('', '-wal', '-shm')
#: Refusals that asking again will not change.
_CONTRACT_ERRORS = frozenset(
    [cls.__name__ for cls in exception.RPC_ERRORS] + ['NotAuthorized'])


def _context() -> dict:
    return {'request_id': f'req-{uuidlib.uuid4()}'}


def recover_command(conf) -> str:
    """The command line that rebuilds this daemon's store."""
    files = ' '.join(f'--config-file {f}' for f in
                     (getattr(conf, 'config_file', None) or ()))
    return f'nova-rt-manage {files or "--config-file <file>"} store recover'


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
        _discount_host_usage(placement, context, root['uuid'], providers)
        trees.append((providers.get(root['uuid'], root), providers))
    return trees


def _discount_host_usage(placement, context, root_uuid: str,
                         providers: dict) -> None:
    """Leave out of the providers' usages what the host itself uses
    (domains no claim explains, reported as consumers of its own): no
    record held it, and the daemon derives it again at its first audit."""
    for index in itertools.count():
        held = placement.get_allocations(
            context, consumer_uuid=reporter.host_usage_consumer(root_uuid, index))
        if not held:
            return
        for rp_uuid, amounts in held.items():
            provider = providers.get(rp_uuid)
            if provider is None:
                continue
            usages = dict(provider.get('usages') or {})
            for rc, n in amounts.items():
                usages[rc] = usages.get(rc, 0) - n
            providers[rp_uuid] = dict(provider, usages=usages)


def newest(trees: list) -> tuple:
    """The tree whose root placement heard from last (of idle ones, where
    a lost store may have left more than one)."""
    return max(trees, key=lambda tree: tree[0].get('last_heartbeat') or '')


# --------------------------------------------------------------------- start


def check_at_start(conf, store, placement, *, wait: Optional[float] = None,
                   clock=time.monotonic, sleep=time.sleep) -> None:
    """Refuse to start on a store that lost this node's claims (see above).

    Raises ``LocalStoreLost``; a store file this start created is removed
    again, so that the next start finds it missing, as it was.
    """
    if store.get_meta(reporter.ROOT_UUID_KEY):
        return
    wait = START_WAIT if wait is None else wait
    LOG.info('Local state store %s %s: asking placement whether it holds '
             'allocations for host %s (for up to %.0fs)', store.path,
             _state(store), conf.host, wait)
    deadline = clock() + wait
    while True:
        try:
            # At least a second, so that a last try can still be answered.
            trees = _ask(placement, conf.host, max(1.0, deadline - clock()))
            break
        except Exception as exc:
            name = reporter.error_name(exc)
            if name in _CONTRACT_ERRORS or clock() >= deadline:
                _discard_if_created(store)
                raise exception.LocalStoreLost(
                    path=store.path, reason=_unverified(store, conf, name, wait)
                ) from None
            LOG.warning('Local state store %s %s: waiting for placement to '
                        'say whether it holds allocations for host %s (%s)',
                        store.path, _state(store), conf.host, name)
            sleep(max(0.0, min(RETRY_INTERVAL, deadline - clock())))
    used = [(root, rebuild.tree_usage(providers)) for root, providers in trees]
    held = [(root, usage) for root, usage in used if usage]
    if held:
        _discard_if_created(store)
        raise exception.LocalStoreLost(path=store.path,
                                       reason=_lost(store, conf, held))
    if trees:
        root, _ = newest(trees)
        store.set_meta(reporter.ROOT_UUID_KEY, root['uuid'])
        LOG.warning('Local state store %s %s; placement has root provider %s '
                    'for node %s with nothing allocated: keeping that '
                    'provider, no claim was lost', store.path, _state(store),
                    root['uuid'], conf.host)


def _ask(placement, host: str, timeout: float) -> list:
    """``node_trees`` within ``timeout`` seconds.

    In a thread of its own: with RabbitMQ away, oslo.messaging retries the
    connection for its reply queue for ever, whatever the call's timeout.
    Given up, the thread is left to its retries (a daemon thread: it does not
    keep a refused process alive).
    """
    answer: dict = {}

    def ask():
        try:
            answer['trees'] = node_trees(placement, _context(), host)
        except Exception as exc:
            answer['error'] = exc

    thread = threading.Thread(target=ask, name='store-check', daemon=True)
    thread.start()
    thread.join(timeout)
    if 'error' in answer:
        raise answer['error']
    if 'trees' not in answer:
        raise TimeoutError('no answer, not even from the message bus')
    return answer['trees']


def _state(store) -> str:
    if not store.existed:
        return 'is missing'
    if store.size_at_open == 0:
        return 'is empty (0 bytes)'
    return 'holds no record of this node (no root provider uuid)'


def _lost(store, conf, held) -> str:
    where = '; '.join(
        f'root provider {root["uuid"]}: '
        + rebuild.amounts(rebuild.total(used.values()))
        for root, used in held)
    return (f'{_state(store)}, but placement holds allocations for this host '
            f'(node {conf.host}, {where}). nova-rt-compute refuses to start: '
            'it would not know these claims, and its first full report would '
            'erase them from placement. Restore the file from a backup (see '
            '"Backing up the state database" in the operations guide), or '
            'rebuild it from placement and libvirt with '
            f'"{recover_command(conf)}", then start again.')


def _unverified(store, conf, error_name: str, wait: float) -> str:
    asked = (f'placement refused to say ({error_name})'
             if error_name in _CONTRACT_ERRORS else
             f'placement did not answer within {wait:.0f}s ({error_name})')
    return (f'{_state(store)}, and whether placement holds allocations for '
            f'this host (node {conf.host}) is unknown: {asked}. '
            'nova-rt-compute refuses to start rather than risk erasing them '
            'with its first full report. Start it again once placement '
            'answers (a new host then starts empty); if the store was lost, '
            f'rebuild it first with "{recover_command(conf)}".')


def _discard_if_created(store) -> None:
    if store.existed or store.path == ':memory:':
        return
    store.close()
    for suffix in _STORE_SUFFIXES:
        try:
            os.unlink(store.path + suffix)
        except FileNotFoundError:
            pass


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
    root, providers = held[0] if held else newest(trees)
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
