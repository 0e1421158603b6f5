"""Allocation candidates for any request Placement's REST API takes: request
groups, ``group_policy``, ``same_subtree``, ``in_tree``, ``root_required``,
traits (required, forbidden, any-of), aggregates (``in:``, forbidden),
``limit``; and the answer in the shape of the requested microversion.

Semantics (OpenStack Placement's, ``placement/objects/allocation_candidate.py``
and ``research_context.py``):

- The unnumbered group's classes may come from different providers of ONE
  tree; its required traits are judged on the providers that give it
  resources, together (so a trait on a root that gives none of them does not
  count: that is what ``root_required`` is for), a forbidden trait on any of
  them excludes the combination; ``member_of`` is met by the provider or by
  its root (an aggregate on the root spans its tree), a forbidden aggregate
  on either excludes it.
- A numbered group is satisfied by ONE provider that has every class,
  trait and aggregate itself.  A numbered group without resources (1.36,
  only inside ``same_subtree``) names a provider of the tree.
- Groups combine within one tree; ``isolate`` wants a different provider for
  every numbered group; ``same_subtree`` wants the providers of the named
  groups to hang below one of them; amounts several groups take from one
  provider must fit together (capacity and ``max_unit``).
- Liveness: a host-owned root (``host`` not NULL) is offered only while its
  last heartbeat is younger than ``heartbeat_timeout``; a root created
  through the REST API (``host`` NULL) always is.
- Order: ``spread`` puts the emptiest first, ``pack`` the fullest, as the
  RPC path does (``query_ops``): the sum over the request's (provider, class)
  of free / capacity, ties to the oldest root then the oldest providers.
  ``limit`` keeps the first N, and the summaries of their trees only.
- Sharing providers (``MISC_SHARES_VIA_AGGREGATE``) are not modelled: every
  candidate comes from one tree.

How (``candidate_queries``): a request of the unnumbered group alone (what
Nova's scheduler mostly sends) is one statement, a row per combination,
ordered and limited in the database.  Otherwise the database filters, per
requested class of each group, the inventories with room for the amount
(``capacity`` and ``used`` are kept current by every write) on live roots
with the group's own filters, one statement whatever the number of groups;
Python keeps the trees that can answer every group and combines them.
Then the providers of the trees kept, with their inventories and their
traits, are read (``candidate_queries.tree_queries``): the summaries.  The
body is written as JSON from these tuples (``candidate_answer``).
"""

from __future__ import annotations

import collections
import datetime
import itertools

import os_resource_classes
import sqlalchemy as sa

from nova_rt.placement import candidate_answer
from nova_rt.placement import candidate_queries as cq
from nova_rt.placement import candidate_request as creq
from nova_rt.placement import common
from nova_rt.placement import models

RP = models.ResourceProvider.__table__
TRAIT = models.Trait.__table__
AGG = models.Aggregate.__table__
INV = models.Inventory.__table__
RC = models.ResourceClass.__table__


class _Group:
    """A request group with names resolved to ids."""

    __slots__ = ('suffix', 'numbered', 'classes', 'amounts', 'required',
                 'required_names', 'forbidden', 'member_of', 'forbidden_aggs',
                 'tree_root')

    def __init__(self, group: creq.RequestGroup):
        self.suffix = group.suffix
        self.numbered = group.use_same_provider
        self.classes = tuple(sorted(group.resources))
        self.amounts = tuple(group.resources[rc] for rc in self.classes)
        self.required = []
        self.required_names = [frozenset(s) for s in group.required]
        self.forbidden = []
        self.member_of = []
        self.forbidden_aggs = []
        self.tree_root = None

    def shape(self) -> tuple:
        return (self.numbered, len(self.classes), self.tree_root is not None,
                len(self.required), bool(self.forbidden),
                len(self.member_of), bool(self.forbidden_aggs))


def _cutoff(now, heartbeat_timeout: int):
    return now - datetime.timedelta(seconds=heartbeat_timeout)


def _ids(conn, table, key: str, values) -> dict:
    values = sorted(set(values))
    if not values:
        return {}
    column = table.c[key]
    return dict(conn.execute(sa.select(column, table.c.id)
                             .where(column.in_(values))).all())


def _names_of(conn, trait_ids) -> dict:
    return dict(conn.execute(sa.select(TRAIT.c.id, TRAIT.c.name).where(
        TRAIT.c.id.in_(sorted(trait_ids)))).all())


def _check_classes(conn, request) -> None:
    """Standard classes are os-resource-classes'; custom ones those created
    through ``/resource_classes`` (or reported by a host's inventory)."""
    unknown = sorted(rc for rc in request.resource_classes
                     if rc not in os_resource_classes.STANDARDS)
    if unknown:
        known = set(conn.execute(sa.select(RC.c.name).where(
            RC.c.name.in_(unknown))).scalars())
        known |= set(conn.execute(sa.select(INV.c.resource_class).where(
            INV.c.resource_class.in_(sorted(set(unknown) - known)))
            .distinct()).scalars())
        for rc in unknown:
            if rc not in known:
                raise creq.BadQuery(
                    'Invalid resource class in resources parameter: No such '
                    f'resource class {rc}.')


def _resolve(conn, request) -> list | None:
    """The groups with ids, and the root trait filters; None when a name
    that no provider can have makes the answer empty."""
    _check_classes(conn, request)
    if any(n > common.MAX_INT for g in request.groups.values()
           for n in g.resources.values()):
        return None              # more than any inventory can hold
    names = set(request.root_required) | set(request.root_forbidden)
    for group in request.groups.values():
        names |= set().union(*group.required) | group.forbidden
    traits = _ids(conn, TRAIT, 'name', names)
    # A standard trait nobody has yet is known (Placement has them all).
    unknown = sorted(n for n in names if n not in traits and (
        n.startswith('CUSTOM_') or n not in common.standard_traits()))
    if unknown:
        raise creq.BadQuery(f"No such trait(s): {', '.join(unknown)}.")
    aggs = _ids(conn, AGG, 'uuid', {
        a for g in request.groups.values()
        for a in set().union(*g.member_of) | g.forbidden_aggs})
    in_trees = {g.in_tree for g in request.groups.values() if g.in_tree}
    roots = {}
    if in_trees:
        roots = dict(conn.execute(
            sa.select(RP.c.uuid, RP.c.root_provider_id)
            .where(RP.c.uuid.in_(sorted(in_trees)))).all())
    groups = []
    for source in request.groups.values():
        group = _Group(source)
        for any_of in source.required:
            ids = sorted(traits[n] for n in any_of if n in traits)
            if not ids:
                return None          # nobody has any of them
            group.required.append(ids)
        group.forbidden = sorted(traits[n] for n in source.forbidden
                                 if n in traits)
        for any_of in source.member_of:
            ids = sorted(aggs[a] for a in any_of if a in aggs)
            if not ids:
                return None
            group.member_of.append(ids)
        group.forbidden_aggs = sorted(aggs[a] for a in source.forbidden_aggs
                                      if a in aggs)
        if source.in_tree:
            if source.in_tree not in roots:
                return None
            group.tree_root = roots[source.in_tree]
        groups.append(group)
    if any(n not in traits for n in request.root_required):
        return None
    root_filter = (sorted(traits[n] for n in request.root_required),
                   sorted(traits[n] for n in request.root_forbidden
                          if n in traits))
    return [groups, root_filter]


def _params(dialect: str, groups: list, root_filter, cutoff) -> dict:
    params = {'cutoff': cq.time_param(dialect, cutoff)}
    for gi, g in enumerate(groups):
        p = f'g{gi}_'
        for ci, (rc, n) in enumerate(zip(g.classes, g.amounts)):
            params[f'{p}rc{ci}'] = rc
            params[f'{p}n{ci}'] = n
        if g.tree_root is not None:
            params[p + 'tree'] = g.tree_root
        if g.forbidden:
            params[p + 'forbidden'] = cq.list_param(dialect, g.forbidden)
        for k, ids in enumerate(g.required):
            params[f'{p}req{k}'] = cq.list_param(dialect, ids)
        for k, ids in enumerate(g.member_of):
            params[f'{p}mem{k}'] = cq.list_param(dialect, ids)
        if g.forbidden_aggs:
            params[p + 'nagg'] = cq.list_param(dialect, g.forbidden_aggs)
    for k, trait_id in enumerate(root_filter[0]):
        params[f'root_req{k}'] = trait_id
    if root_filter[1]:
        params['root_forbidden'] = cq.list_param(dialect, root_filter[1])
    return params


# -- the trees found -------------------------------------------------------

class _Trees:
    """Providers, inventories and traits of the trees found."""

    def __init__(self, conn, roots, want_traits: bool,
                 want_inventories: bool = True):
        dialect = common.dialect_name(conn)
        queries = cq.tree_queries(dialect, want_inventories, want_traits)
        params = {'roots': cq.list_param(dialect, roots)}
        self.uuid = uuid = {}
        self.parent = parent = {}
        self.root = root_of = {}
        #: rp -> class -> (capacity, used): the summaries'; the amounts
        #: combined were checked on the inventories the filters read
        self.inventory = inventory = collections.defaultdict(dict)
        #: rp -> frozenset of trait names (one object per distinct set)
        self.traits = collections.defaultdict(frozenset)
        trait_ids = {}       # rp -> "id,id,..."
        if want_traits:
            cq.long_concat(conn)
        if cq.tagged_tree_rows(dialect):
            for kind, rp, text, a, b in queries[0].rows(conn, params):
                if kind == cq.INVENTORY:
                    inventory[rp][text] = (a, b)
                elif kind == cq.PROVIDER:
                    uuid[rp], parent[rp], root_of[rp] = text, a, b
                else:
                    trait_ids[rp] = text
        else:
            for rp, text, a, b in queries[0].rows(conn, params):
                uuid[rp], parent[rp], root_of[rp] = text, a, b
            rest = iter(queries[1:])
            if want_inventories:
                for rp, rc, cap, used in next(rest).rows(conn, params):
                    inventory[rp][rc] = (cap, used)
            if want_traits:
                trait_ids = dict(next(rest).rows(conn, params))
        if trait_ids:
            self._name_traits(conn, trait_ids)

    def _name_traits(self, conn, trait_ids: dict) -> None:
        sets = {text: frozenset(int(i) for i in text.split(','))
                for text in set(trait_ids.values())}
        names = _names_of(conn, set().union(*sets.values()))
        named = {text: frozenset(names[i] for i in ids)
                 for text, ids in sets.items()}
        self.traits.update((rp, named[text])
                           for rp, text in trait_ids.items())

    def ancestors(self, rp) -> set:
        found = set()
        while rp is not None:
            found.add(rp)
            rp = self.parent.get(rp)
        return found


def _same_subtree(rps: set, trees: _Trees) -> bool:
    if len(rps) <= 1:
        return True
    common_ancestors = set.intersection(*(trees.ancestors(rp) for rp in rps))
    return bool(common_ancestors & rps)


def _group_options(group: _Group, by_class: dict, trees: _Trees) -> list:
    """``[(((rp, rc, amount), ...), {rp, ...}, rp of a numbered group)]``:
    the ways one group can be met in one tree."""
    if group.numbered:
        if not group.classes:
            return [((), frozenset((rp,)), rp) for rp in sorted(by_class[-1])]
        rps = set.intersection(*(by_class[ci]
                                 for ci in range(len(group.classes))))
        return [(tuple((rp, rc, n) for rc, n in zip(group.classes,
                                                     group.amounts)),
                 frozenset((rp,)), rp) for rp in sorted(rps)]
    options = []
    for choice in itertools.product(*(sorted(by_class[ci]) for ci in
                                      range(len(group.classes)))):
        rps = frozenset(choice)
        if group.required_names:
            have = set().union(*(trees.traits[rp] for rp in rps))
            if not all(any_of & have for any_of in group.required_names):
                continue
        options.append((tuple(zip(choice, group.classes, group.amounts)),
                        rps, None))
    return options


def _fits_together(by_rp: dict, inventory: dict) -> bool:
    for rp, amounts in by_rp.items():
        for rc, amount in amounts.items():
            cap, used, max_unit = inventory[rp, rc]
            if used + amount > cap or amount > max_unit:
                return False
    return True


def _combine(groups, request, options_by_group, trees, inventory,
             root) -> list:
    """Allocation requests of one tree: ``({rp: {rc: amount}}, the options
    chosen per group, root, score)`` (``_mappings`` makes the mappings of
    those kept).  No two are the same: the options of a numbered group
    differ by provider, those of the unnumbered group by where each class
    comes from."""
    numbered = [i for i, g in enumerate(groups) if g.numbered]
    isolate = request.group_policy == 'isolate' and len(numbered) > 1
    suffixes = [g.suffix for g in groups]
    found = []
    for choice in itertools.product(*options_by_group):
        if isolate and len({choice[i][2] for i in numbered}) != len(numbered):
            continue
        if request.same_subtrees:
            mappings = dict(zip(suffixes, (option[1] for option in choice)))
            if not all(_same_subtree(
                    set().union(*(mappings[s] for s in subtree)), trees)
                    for subtree in request.same_subtrees):
                continue
        by_rp: dict = {}
        shared = False
        for option in choice:
            for rp, rc, n in option[0]:
                amounts = by_rp.get(rp)
                if amounts is None:
                    by_rp[rp] = {rc: n}
                elif rc in amounts:
                    amounts[rc] += n
                    shared = True
                else:
                    amounts[rc] = n
        # Each amount alone had room (the query); together they must too.
        if shared and not _fits_together(by_rp, inventory):
            continue
        found.append((by_rp, choice, root, _score(by_rp, inventory)))
    return found


def _mappings(groups, areqs) -> list:
    """The allocation requests kept, with ``{suffix: frozenset(rp)}`` for
    the options chosen (made for those only: most are cut by the limit)."""
    suffixes = [g.suffix for g in groups]
    return [(by_rp, dict(zip(suffixes, (option[1] for option in choice))),
             root, score) for by_rp, choice, root, score in areqs]


def _score(by_rp: dict, inventory: dict) -> float:
    """Emptiness: the sum of free / capacity of what the request takes."""
    total = 0.0
    for rp, amounts in by_rp.items():
        for rc in amounts:
            cap, used, _ = inventory[rp, rc]
            if cap:
                total += (cap - used) / cap
    return total


def _single_group(conn, request, group, root_filter, params, order,
                  one_provider_each):
    """The unnumbered group alone: one statement, ordered and limited."""
    dialect = common.dialect_name(conn)
    query = cq.single_group_query(
        dialect, group.shape(), len(root_filter[0]), bool(root_filter[1]),
        order, bool(request.limit), one_provider_each)
    if request.limit:
        params['limit'] = request.limit
    cq.prefer_hash_joins(conn)
    rows = query.rows(conn, params)
    classes, amounts = group.classes, group.amounts
    # One dict of amounts for every request taking all from one provider:
    # the body is only encoded, and a dict per request was most of the
    # cost of a thousand candidates.
    everything = dict(zip(classes, amounts))
    areqs = []
    n_classes = len(classes)
    for row in rows:
        root, first = row[0], row[1]
        # (The root's id is the first provider's when it gives them.)
        if row.count(first) - (root == first) == n_classes:
            areqs.append(({first: everything}, {'': frozenset((first,))},
                          root))
            continue
        by_rp: dict = {}
        for rp, rc, n in zip(row[1:], classes, amounts):
            by_rp.setdefault(rp, {})[rc] = n
        areqs.append((by_rp, {'': frozenset(by_rp)}, root))
    return areqs


def _by_groups(conn, request, groups, rows, want_traits, order,
               one_provider_each):
    """Any other request: the trees that answer every group, combined."""
    # group -> root -> class index -> providers
    found = [collections.defaultdict(lambda: collections.defaultdict(set))
             for _ in groups]
    inventory = {}        # (rp, class) -> (capacity, used, max_unit)
    for gi, ci, rp, root, cap, used, max_unit in rows:
        found[gi][root][ci].add(rp)
        if ci >= 0:
            inventory[rp, groups[gi].classes[ci]] = (cap, used, max_unit)
    roots = None
    for g, by_root in zip(groups, found):
        wanted = max(len(g.classes), 1)
        ok = {root for root, by_class in by_root.items()
              if len(by_class) == wanted}
        roots = ok if roots is None else roots & ok
        if not roots:
            return [], None
    # Before combining, only what the rules need: the parents for
    # same_subtree, the traits for the unnumbered group's.
    traits = any(g.required_names and not g.numbered for g in groups)
    facts = None
    if traits or request.same_subtrees:
        facts = _Trees(conn, roots, traits, want_inventories=False)
    areqs = []
    for root in sorted(roots):
        options = [_group_options(g, by_root[root], facts)
                   for g, by_root in zip(groups, found)]
        if all(options):
            areqs.extend(_combine(groups, request, options, facts,
                                  inventory, root))
    if one_provider_each:
        areqs = [a for a in areqs if len(a[0]) <= 1]
    # Stable: ties keep the order of roots and providers they came in.
    areqs.sort(key=(lambda a: (-a[3], a[2])) if order == 'spread'
               else (lambda a: (a[3], a[2])))
    if request.limit:
        areqs = areqs[:request.limit]
    if not areqs:
        return [], None
    areqs = _mappings(groups, areqs)
    return areqs, _Trees(conn, {a[2] for a in areqs}, want_traits)


def find(conn, request: creq.CandidateRequest, heartbeat_timeout: int,
         order: str = 'spread', one_provider_each: bool = False,
         want_traits=True, now=None):
    """``(allocation requests, trees)``: the requests ordered and limited,
    as ``({rp id: {class: amount}}, mappings {suffix: frozenset(rp id)},
    root id, ...)``, and the providers of their trees (those kept)."""
    resolved = _resolve(conn, request)
    if resolved is None:
        return [], None
    groups, root_filter = resolved
    dialect = common.dialect_name(conn)
    now = now or common.utcnow()
    params = _params(dialect, groups, root_filter,
                     _cutoff(now, heartbeat_timeout))
    if len(groups) == 1 and not groups[0].numbered:
        areqs = _single_group(conn, request, groups[0], root_filter, params,
                              order, one_provider_each)
        if not areqs:
            return [], None
        return areqs, _Trees(conn, {a[2] for a in areqs}, want_traits)
    query = cq.fits_query(dialect, tuple(g.shape() for g in groups),
                          len(root_filter[0]), bool(root_filter[1]))
    return _by_groups(conn, request, groups, query.rows(conn, params),
                      want_traits, order, one_provider_each)


def _has_trees(conn) -> bool:
    return conn.execute(sa.select(RP.c.id).where(
        RP.c.parent_provider_id.is_not(None)).limit(1)).first() is not None


# -- the answer ------------------------------------------------------------

def encoded_allocation_candidates(conn, request: creq.CandidateRequest,
                                  version, heartbeat_timeout: int,
                                  order: str = 'spread', now=None) -> bytes:
    """The body of ``GET /allocation_candidates`` at ``version``, as JSON
    (``candidate_answer``)."""
    version = tuple(version)
    # Before 1.29 a client knows no trees: on a cloud that has some, only
    # requests from one provider of a tree, as Placement.
    only_requested = version < (1, 29) and _has_trees(conn)
    areqs, trees = find(conn, request, heartbeat_timeout, order=order,
                        one_provider_each=only_requested,
                        want_traits=version >= (1, 17), now=now)
    return candidate_answer.encode(areqs, trees, request.resource_classes,
                                   version, only_requested)

