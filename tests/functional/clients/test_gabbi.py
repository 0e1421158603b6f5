"""Placement's own gabbi files, live with ``gabbi-run``: exactly those listed
in gabbi_passing.txt, each against a fresh server and database
(gabbits.py says how, and how to recompute the list)."""

import pytest

from tests.functional.clients import gabbits

LISTED = gabbits.read_passing()


def test_passing_list_is_known_and_sorted(ref_venv):
    assert LISTED, 'gabbi_passing.txt lists no file'
    assert LISTED == sorted(set(LISTED))
    unknown = set(LISTED) - set(gabbits.all_files())
    assert not unknown, f'not in the openstack-placement wheel: {sorted(unknown)}'


@pytest.mark.parametrize('name', LISTED)
def test_gabbi_file_passes(ref_venv, name):
    passed, output = gabbits.run_file(name)
    assert passed, f'{name} regressed:\n{gabbits.failure_summary(output, 40)}'
