"""Bars, cell text and the column choice of the nova-rt CLI."""

import pytest

from nova_rt.cli import output


@pytest.mark.parametrize('used,total,bar', [
    (0, 16, '[..........] 0/16'),
    (8, 16, '[#####.....] 8/16'),
    (16, 16, '[##########] 16/16'),
    (1, 1000, '[#.........] 1/1000'),      # in use never looks empty
    (40, 16, '[##########]! 40/16'),      # overcommit is marked, not clipped away
    (0, 0, '[..........] 0/0'),
    (2.0, 4.0, '[#####.....] 2/4'),
])
def test_usage_bar(used, total, bar):
    assert output.usage_bar(used, total) == bar


def test_cells_show_booleans_and_empty_lists_for_a_person():
    assert output.cell(True) == 'yes'
    assert output.cell(False) == 'no'
    assert output.cell([]) == '-'
    assert output.cell(None) == '-'
    assert output.cell(['a', 'b']) == 'a\nb'
    assert output.cell({'VCPU': 2, 'MEMORY_MB': 512}) == 'VCPU=2\nMEMORY_MB=512'


def test_a_column_keeps_the_value_for_machines_and_text_for_people():
    column = output.Column({'VCPU': 2}, '[##] 2/4')
    assert column.machine_readable() == {'VCPU': 2}
    assert column.human_readable() == '[##] 2/4'
    assert output.Column(True).human_readable() == 'yes'
    assert output.Column(True).machine_readable() is True


VIEW = output.View(main=('host', 'usages'),
                   text=lambda r: {'usages': f"{r['usages']['VCPU']} used"})
KEYS = ['host', 'uuid', 'usages']


@pytest.mark.parametrize('fmt,long,requested,columns', [
    ('table', False, [], ['host', 'usages']),       # what a person reads first
    ('value', False, [], ['host', 'usages']),
    ('csv', False, [], ['host', 'usages']),
    ('table', True, [], ['host', 'usages', 'uuid']),
    ('json', False, [], ['host', 'usages', 'uuid']),  # the whole document
    ('yaml', False, [], ['host', 'usages', 'uuid']),
    ('table', False, ['uuid'], ['host', 'usages', 'uuid']),  # cliff applies -c
])
def test_columns_for_each_format(fmt, long, requested, columns):
    assert output.pick_columns(KEYS, VIEW, fmt, long, requested) == columns


def test_a_view_without_main_columns_shows_all():
    assert output.pick_columns(KEYS, output.View(), 'table', False, []) == KEYS


def test_an_unknown_column_names_the_option_and_the_columns():
    with pytest.raises(output.UsageError,
                       match=r"-c/--column: no column 'nope' \(columns: host, "
                             r"uuid, usages\)"):
        output.pick_columns(KEYS, VIEW, 'table', False, ['host', 'nope'])
    # cliff's spelling of a column is accepted too.
    output.check_columns(['Host', 'USAGES'], KEYS)
    output.check_columns(['anything'], [])       # nothing known: nothing to check


def test_rows_and_keys():
    records = [{'host': 'h1', 'usages': {'VCPU': 2}},
               {'host': 'h2', 'usages': {'VCPU': 0}, 'uuid': 'u2'}]
    assert output.keys_of(records) == ['host', 'usages', 'uuid']
    row = output.row(records[0], ['host', 'usages', 'uuid'], VIEW)
    assert [c.human_readable() for c in row] == ['h1', '2 used', '-']
    assert [c.machine_readable() for c in row] == ['h1', {'VCPU': 2}, None]
