"""Which churned tables are due for a vacuum (``housekeeping.due``)."""

from nova_rt.placement import housekeeping


def test_due_needs_both_the_minimum_and_the_fraction_of_live_rows():
    stats = [
        ('allocations', 1500, 1000),     # both reached
        ('consumers', 500, 999),         # under the minimum
        ('inventories', 50000, 4999),    # under a tenth of its live rows
        ('resource_providers', 50000, 5000),
        ('traits', 0, 0),
    ]
    assert housekeeping.due(stats) == ['allocations', 'resource_providers']
    assert housekeeping.due(stats, min_dead=100, fraction=0.5) == [
        'allocations', 'consumers']


def test_the_churned_tables_are_those_of_the_schema():
    assert housekeeping.CHURNED_TABLES == (
        'allocations', 'consumers', 'inventories', 'resource_providers')
