"""Forcing one interleaving of two writers on PostgreSQL, deterministically.

The first writer runs in a thread and is held just after (or before) one
named function of an operation module returns; the second then runs in
another thread, and the first is let go only once the second has finished
or waits on one of the first's row locks.  What a serial execution in
either order would leave must then hold (``accounting_errors``).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from nova_rt.placement import transaction
from tests.functional.placement import fixtures


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
            "current_database() AND wait_event_type = 'Lock'")).scalar())


def in_transaction(engine, func):
    """``func(conn)`` as the REST API runs it: one transaction, retried."""
    transactions = transaction.Transactions(engine)
    return lambda: transactions.run('race', func, {})


def interleave(monkeypatch, engine, module, name, first, second,
               before: bool = False) -> dict:
    """Run ``first(conn)`` held at ``module.name`` (after it returns, or
    ``before`` it is called: the first call only), then ``second(conn)``;
    each in one transaction.  ``{'first': outcome, 'second': outcome}``:
    None, or the exception raised."""
    outcomes = interleave_steps(
        monkeypatch, engine, in_transaction(engine, first),
        [(module, name, in_transaction(engine, second), before)])
    return {'first': outcomes['first'], 'second': outcomes[0]}


def interleave_steps(monkeypatch, engine, first, steps) -> dict:
    """Run ``first()`` in a thread; each step ``(module, name, func,
    before)`` holds it at the first call of ``module.name`` while
    ``func()`` runs in another thread, until that one has finished or waits
    on a lock.  ``{'first': outcome, 0: outcome, 1: ...}``."""
    outcomes: dict = {}

    def run(label, func):
        try:
            func()
            outcomes[label] = None
        except Exception as error:  # noqa: BLE001 - the outcome is checked
            outcomes[label] = error

    others = []
    for i, (module, name, func, before) in enumerate(steps):
        monkeypatch.setattr(module, name, _hooked(
            getattr(module, name), i, func, before, engine, run, others))
    one = threading.Thread(target=run, args=('first', first), name='first')
    one.start()
    one.join(60)
    for other in others:
        other.join(30)
    assert not one.is_alive() and not any(o.is_alive() for o in others)
    assert len(others) == len(steps), f'steps reached: {len(others)}'
    return outcomes


def _hooked(original, label, func, before, engine, run, others):
    done = []

    def hold():
        if threading.current_thread().name != 'first' or done:
            return
        done.append(True)
        other = threading.Thread(target=run, args=(label, func),
                                 name=f'step{label}')
        others.append(other)
        other.start()
        fixtures.wait_until(lambda: not other.is_alive()
                            or _waiting_on_a_lock(engine), timeout=10,
                            interval=0.05)

    def hooked(*args, **kwargs):
        if before:
            hold()
        result = original(*args, **kwargs)
        if not before:
            hold()
        return result
    return hooked


def accounting_errors(conn) -> list:
    """What breaks placement's accounting: an allocation with no inventory
    of its class, a stored ``used`` that is not the sum of its allocations."""
    orphans = conn.execute(sa.text(
        'SELECT a.resource_provider_id, a.resource_class FROM allocations a '
        'LEFT JOIN inventories i ON i.resource_provider_id = '
        'a.resource_provider_id AND i.resource_class = a.resource_class '
        'WHERE i.id IS NULL')).all()
    drift = conn.execute(sa.text(
        'SELECT i.resource_provider_id, i.resource_class, i.used, '
        'COALESCE(SUM(a.used), 0) FROM inventories i LEFT JOIN allocations a '
        'ON a.resource_provider_id = i.resource_provider_id AND '
        'a.resource_class = i.resource_class GROUP BY i.id, '
        'i.resource_provider_id, i.resource_class, i.used '
        'HAVING i.used <> COALESCE(SUM(a.used), 0)')).all()
    return [('no inventory', *r) for r in orphans] + [
        ('used drifted', *r) for r in drift]
