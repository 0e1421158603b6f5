"""Tables, bars and the JSON/YAML views of the nova-rt CLI."""

import json

import pytest
import yaml

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


def test_table_aligns_columns_and_expands_multiline_cells():
    text = output.table(
        [{'host': 'h1', 'res': {'VCPU': 2, 'MEMORY_MB': 512}},
         {'host': 'longer-host', 'res': None}],
        [('host', 'Host'), ('res', 'Resources')])
    assert text.splitlines() == [
        '+-------------+---------------+',
        '| Host        | Resources     |',
        '+-------------+---------------+',
        '| h1          | VCPU=2        |',
        '|             | MEMORY_MB=512 |',
        '| longer-host | -             |',
        '+-------------+---------------+',
    ]


def test_cells_show_booleans_and_empty_lists_for_a_person():
    assert output.cell(True) == 'yes'
    assert output.cell(False) == 'no'
    assert output.cell([]) == '-'
    assert output.cell(['a', 'b']) == 'a\nb'


def test_json_and_yaml_views_are_the_data_unchanged():
    data = [{'host': 'h1', 'alive': True, 'usages': {'VCPU': 2}, 'uuid': None}]
    result = output.Result(data, lambda _data: 'TABLE')
    assert json.loads(output.render(result, 'json')) == data
    assert yaml.safe_load(output.render(result, 'yaml')) == data
    assert output.render(result, 'table') == 'TABLE'
