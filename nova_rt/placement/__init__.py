"""The central placement service: OpenStack Placement's semantics over RPC.

Modules: ``models`` (SQL schema) and ``migrations`` (alembic, run by
``db.sync``), ``db`` (engines; SQLite or PostgreSQL), ``methods`` (the table
of RPC methods) and ``schemas`` (their arguments' schemas), ``operations``
(one function per RPC method, on a connection: ``provider_ops``,
``allocation_ops``, ``query_ops``), ``manager`` (the RPC endpoint, derived
from the table), ``rpcapi`` (the client), ``service`` (the process).

Where ``shared/spec/rpc-api.md`` is silent, placement does this:

- ``report_provider_tree``: ``generation: null`` creates; naming an existing
  provider with null, or any stale generation, is
  ``ResourceProviderGenerationConflict`` (its ``current`` kwarg tells the
  generation to retry with).  Providers of another host are refused
  (``NotAuthorized``, logged).  A parent must be listed in the same report.
  Only changed providers get a new generation; a created one starts at 1.
  ``traits`` absent or null keeps the provider's traits; a list replaces them.
  Inventory fields default as in Placement (``reserved`` 0, ``min_unit`` 1,
  ``max_unit`` total, ``step_size`` 1, ``allocation_ratio`` 1.0);
  ``reserved > total`` and ``min_unit > max_unit`` are ``InvalidInput``.
- ``report_allocations``: ``generation`` is the root provider's, as the
  reporter last saw it; the root is compare-and-swapped first and every child
  whose allocations change is bumped too; the result is every provider of the
  tree with its generation.  An amount of 0 stores nothing.  A provider
  outside the host's tree, or a class it has no inventory of, is
  ``InvalidAllocation``.  Capacity is checked where usage grows, so a host can
  always report the same or less after shrinking its inventory.
- A report also counts as a heartbeat for its roots; a heartbeat is never a
  provider write (no generation change).  Liveness is placement's own clock.
- ``set_traits`` / ``set_aggregates`` return ``{uuid: generation}``;
  ``delete_resource_provider`` removes the provider and its descendants,
  refused with ``InventoryInUse`` while any of them is allocated.
- ``get_usages(uuid)`` lists every class the provider has inventory of (zeros
  included); ``get_usages(project_id)`` sums that project's allocations; both
  given: the project's usage on that provider.
- Candidates are met within one tree, each class by any provider of it
  (the compute node's classes by the root, a PCI device's by its child
  provider), as Placement's unnumbered request group; where a class fits on
  several providers of a tree, each combination is a candidate.  Traits and
  ``member_of`` are judged on the root.  ``spread`` orders by the sum over
  requested classes of free / capacity, most free first (``pack``: least
  first), then the oldest provider.
- UUIDs are the canonical lower-case form; traits are os-traits names or
  ``CUSTOM_[A-Z0-9_]+``.
- A process serves calls on 4 worker threads unless ``[DEFAULT]
  executor_thread_pool_size`` is set (oslo.messaging's 64 only contend for
  the GIL: every call is a short transaction); run more processes on
  PostgreSQL for more throughput.
"""
