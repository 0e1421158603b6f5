"""Providers as Placement's REST API manages them: list with its filters,
create, rename, re-parent, delete.

Ownership (doc/source/rest-api.rst): a provider a host reported belongs to
that host, whose reports are the authority for it; here it can be read, but
not renamed, moved or deleted (``Conflict`` naming the host), and no
REST-created provider may hang under it.  A provider created here has no
host (``host`` NULL) and no report ever touches it.

Names are unique, as in Placement: those of the providers created here by
a unique column (``unique_name``: two creates of one name cannot both
commit, the loser gets Placement's ``duplicate_name``), against the hosts'
names by a query (theirs predate this API, and a host may report any).
"""

from __future__ import annotations

import contextlib
import functools

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from nova_rt import exception
from nova_rt.placement import common
from nova_rt.placement import db
from nova_rt.placement import models
from nova_rt.placement import query_ops
from nova_rt.placement import tree_locks
from nova_rt.placement.rest import errors

RP = common.RP
INV = models.Inventory


@functools.cache
def _select():
    # Built once: aliasing the table per request cost more than the query.
    parent, root = aliased(RP), aliased(RP)
    return sa.select(
        RP.id, RP.uuid, RP.name, RP.host, RP.generation,
        parent.uuid.label('parent_uuid'), root.uuid.label('root_uuid'),
    ).outerjoin(parent, parent.id == RP.parent_provider_id).outerjoin(
        root, root.id == RP.root_provider_id)


def _has_room(rc: str, amount: int):
    return sa.exists().where(
        INV.resource_provider_id == RP.id, INV.resource_class == rc,
        INV.capacity - INV.used >= amount, INV.min_unit <= amount,
        INV.max_unit >= amount, sa.literal(amount) % INV.step_size == 0)


def list_providers(conn, name=None, uuid=None, in_tree=None,
                   member_of=(), forbidden_aggregates=(), required=(),
                   forbidden_traits=(), resources=None) -> list:
    """Rows (id, uuid, name, host, generation, parent_uuid, root_uuid).

    ``member_of``/``required``: lists of any-of sets, all of which must
    match; the forbidden sets must not match at all.
    """
    stmt = _select()
    if name is not None:
        stmt = stmt.where(RP.name == name)
    if uuid is not None:
        stmt = stmt.where(RP.uuid == uuid)
    if in_tree is not None:
        stmt = stmt.where(RP.root_provider_id == sa.select(
            RP.root_provider_id).where(RP.uuid == in_tree).scalar_subquery())
    for any_of in member_of:
        stmt = stmt.where(query_ops.in_any_aggregate(RP.id, sorted(any_of)))
    if forbidden_aggregates:
        stmt = stmt.where(~query_ops.in_any_aggregate(
            RP.id, sorted(forbidden_aggregates)))
    for any_of in required:
        stmt = stmt.where(query_ops.has_any_trait(RP.id, sorted(any_of)))
    if forbidden_traits:
        stmt = stmt.where(~query_ops.has_any_trait(
            RP.id, sorted(forbidden_traits)))
    for rc, amount in sorted((resources or {}).items()):
        stmt = stmt.where(_has_room(rc, amount))
    return conn.execute(stmt.order_by(RP.id)).all()


def get(conn, uuid: str):
    row = conn.execute(_select().where(RP.uuid == uuid)).first()
    if row is None:
        raise exception.NotFound(
            reason=f'No resource provider with uuid {uuid} found',
            code=errors.RESOURCE_PROVIDER_NOT_FOUND)
    return row


def _host_owned(row, doing: str):
    return exception.Conflict(
        reason=f'Resource provider {row.uuid} belongs to host {row.host}, '
               f'whose own reports are the authority for it: {doing} is '
               'refused through the REST API.')


def _check_name(conn, name: str, uuid: str) -> None:
    other = conn.execute(sa.select(RP.uuid).where(
        RP.name == name, RP.uuid != uuid).limit(1)).first()
    if other is not None:
        raise exception.Conflict(
            reason=f'Conflicting resource provider name: {name} already '
                   'exists.', code=errors.DUPLICATE_NAME)


@contextlib.contextmanager
def _duplicates_refused(name: str, uuid: str):
    """A concurrent writer's row with the same name or uuid committed
    first: Placement's 409 (the transaction is rolled back)."""
    try:
        yield
    except Exception as error:
        if not db.is_duplicate(error):
            raise
        # The driver's message names the index (SQLAlchemy's adds the
        # statement, which names every column).
        what = (f'name: {name}' if 'unique_name' in db.describe(error)
                else f'uuid: {uuid}')
        raise exception.Conflict(
            reason=f'Conflicting resource provider {what} already exists.',
            code=errors.DUPLICATE_NAME) from None


def _parent(conn, parent_uuid: str, name: str, uuid: str, doing: str):
    parent = conn.execute(sa.select(
        RP.id, RP.uuid, RP.host, RP.root_provider_id).where(
            RP.uuid == parent_uuid)).first()
    if parent is None:
        raise exception.InvalidInput(message=(
            f'Unable to {doing} resource provider "{name}", {uuid}: parent '
            'provider UUID does not exist.'))
    if parent.host is not None:
        raise exception.Conflict(
            reason=f'Resource provider {parent.uuid} belongs to host '
                   f'{parent.host}: a provider created through the REST API '
                   'cannot be its child (the host\'s reports own its tree).')
    return parent


def create(conn, name: str, uuid: str, parent_uuid: str | None = None):
    if conn.execute(sa.select(RP.id).where(RP.uuid == uuid)).first():
        raise exception.Conflict(
            reason=f'Conflicting resource provider uuid: {uuid} already '
                   'exists.', code=errors.DUPLICATE_NAME)
    _check_name(conn, name, uuid)
    if parent_uuid == uuid:
        raise exception.InvalidInput(message=(
            f'Unable to create resource provider "{name}", {uuid}: parent '
            'provider UUID cannot be same as UUID. Please modify your '
            'request.'))
    parent = (_parent(conn, parent_uuid, name, uuid, 'create')
              if parent_uuid else None)
    with _duplicates_refused(name, uuid):
        rp_id = common.insert_ids(conn, RP, [{
            'uuid': uuid, 'name': name, 'unique_name': name, 'host': None,
            'generation': 0,
            'parent_provider_id': parent.id if parent else None,
            'last_heartbeat': None}], 'uuid')[uuid]
    conn.execute(sa.update(RP).where(RP.id == rp_id).values(
        root_provider_id=parent.root_provider_id if parent else rp_id))
    return get(conn, uuid)


def _subtree_ids(conn, rp_id: int) -> list:
    ids, frontier = [rp_id], [rp_id]
    while frontier:
        frontier = list(conn.execute(sa.select(RP.id).where(
            RP.parent_provider_id.in_(frontier))).scalars())
        ids.extend(frontier)
    return ids


def update(conn, uuid: str, name: str, parent_uuid=..., reparent=False):
    """Rename and (``parent_uuid`` given) set the parent; from 1.37
    (``reparent``) a parent may change or go."""
    row = _row_for_update(conn, uuid)
    if row.host is not None:
        raise _host_owned(row, 'a change of name or parent')
    _check_name(conn, name, uuid)
    values = {'name': name}
    if parent_uuid is not ...:
        parent = (_parent(conn, parent_uuid, name, uuid, 'save')
                  if parent_uuid else None)
        if parent is not None and parent.root_provider_id != \
                row.root_provider_id:
            # Moving the subtree to another root: both trees' claims
            # (which hold their roots, tree_locks) finish first, and none
            # starts on either until this commits; then read again.
            tree_locks.lock(conn, [row.id, parent.id])
            row = _row_for_update(conn, uuid)
            parent = _parent(conn, parent_uuid, name, uuid, 'save')
        elif parent is None and row.parent_provider_id is not None:
            tree_locks.lock(conn, [row.id])
            row = _row_for_update(conn, uuid)
        new_parent_id = parent.id if parent else None
        if new_parent_id != row.parent_provider_id:
            if row.parent_provider_id is not None and not reparent:
                what = 're-parenting' if parent else 'un-parenting'
                raise exception.InvalidInput(message=(
                    f'Unable to save resource provider {uuid}: Object '
                    f'action update failed because: {what} a provider is '
                    'not currently allowed.'))
            subtree = _subtree_ids(conn, row.id)
            if new_parent_id in subtree:
                raise exception.InvalidInput(message=(
                    f'Unable to save resource provider {uuid}: Object '
                    'action update failed because: creating loop in the '
                    'provider tree is not allowed.'))
            values['parent_provider_id'] = new_parent_id
            new_root = parent.root_provider_id if parent else row.id
            conn.execute(sa.update(RP).where(RP.id.in_(subtree)).values(
                root_provider_id=new_root))
            conn.execute(sa.update(INV).where(
                INV.resource_provider_id.in_(subtree)).values(
                    root_provider_id=new_root))
    with _duplicates_refused(name, uuid):
        conn.execute(sa.update(RP).where(RP.id == row.id).values(
            unique_name=name, **values))
    return get(conn, uuid)


def _row_for_update(conn, uuid: str):
    row = conn.execute(sa.select(
        RP.id, RP.uuid, RP.host, RP.parent_provider_id,
        RP.root_provider_id).where(RP.uuid == uuid)).first()
    if row is None:
        raise exception.NotFound(
            reason=f'No resource provider with uuid {uuid} found',
            code=errors.RESOURCE_PROVIDER_NOT_FOUND)
    return row


def delete(conn, uuid: str) -> None:
    row = conn.execute(sa.select(RP.id, RP.uuid, RP.host).where(
        RP.uuid == uuid)).first()
    if row is None:
        raise exception.NotFound(
            reason=f'No resource provider with uuid {uuid} found for delete')
    if row.host is not None:
        raise _host_owned(row, 'deleting it')
    # No claim on it may be checking its inventory meanwhile (tree_locks).
    tree_locks.lock(conn, [row.id])
    if conn.execute(sa.select(RP.id).where(
            RP.parent_provider_id == row.id).limit(1)).first():
        raise exception.Conflict(
            reason=f'Unable to delete parent resource provider {uuid}: It '
                   'has child resource providers.',
            code=errors.PROVIDER_CANNOT_DELETE_PARENT)
    if common.has_allocations(conn, [row.id]):
        raise exception.Conflict(
            reason=f'Unable to delete resource provider {uuid}: Resource '
                   'provider has allocations.', code=errors.PROVIDER_IN_USE)
    conn.execute(sa.update(RP).where(RP.id == row.id).values(
        root_provider_id=None))
    conn.execute(sa.delete(RP).where(RP.id == row.id))
