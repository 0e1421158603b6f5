import pytest

from nova_rt.hardware import pages
from nova_rt.objects import MemPagePool

POOLS = (MemPagePool(4, 262144), MemPagePool(2048, 512), MemPagePool(1048576, 2, reserved=1))


@pytest.mark.parametrize('value, expected', [
    ('small', 'small'), ('Large', 'large'), (' any ', 'any'),
    ('2048', 2048), (2048, 2048), ('4', 4),
    ('2MB', 2048), ('2MiB', 2048), ('2 MB', 2048), ('1GB', 1048576), ('1GiB', 1048576),
    ('2048KB', 2048), ('2097152B', 2048),
])
def test_parse_page_size(value, expected):
    assert pages.parse_page_size(value) == expected


@pytest.mark.parametrize('value', [
    'huge', '', '0', 0, -2048, '-2048', '2M', '2Mb', '1.5GB', '100B', True, 2.0, None,
])
def test_parse_page_size_rejects(value):
    with pytest.raises(ValueError, match='not a page size'):
        pages.parse_page_size(value)


def test_small_is_the_smallest_pool_only():
    assert pages.select_page_size(POOLS, {}, 1024, 'small') == (4, None)
    size, reason = pages.select_page_size(POOLS, {4: 262144}, 1024, 'small')
    assert size is None
    assert reason == 'needs 1024 MiB of 4 KiB pages (262144 pages), 0 free'


def test_large_prefers_the_largest_and_never_falls_back_to_small():
    assert pages.select_page_size(POOLS, {}, 1024, 'large') == (1048576, None)
    # The only free 1 GiB page is used: 2 MiB pages serve.
    assert pages.select_page_size(POOLS, {1048576: 1}, 1024, 'large') == (2048, None)
    size, reason = pages.select_page_size(POOLS, {1048576: 1, 2048: 512}, 1024, 'large')
    assert size is None
    assert '1048576 KiB pages (1 pages), 0 free' in reason
    assert '2048 KiB pages (512 pages), 0 free' in reason


def test_large_on_a_cell_without_huge_pages():
    size, reason = pages.select_page_size(POOLS[:1], {}, 1024, 'large')
    assert size is None
    assert reason == 'has no large pages (only 4 KiB pages)'


def test_any_falls_back_to_small():
    assert pages.select_page_size(POOLS, {1048576: 1, 2048: 512}, 1024, 'any') == (4, None)


def test_memory_must_be_a_whole_number_of_pages():
    size, reason = pages.select_page_size(POOLS, {}, 1536, 1048576)
    assert size is None
    assert reason == '1536 MiB is not a whole number of 1048576 KiB pages'
    # "large" skips the size that does not divide and takes the next one.
    assert pages.select_page_size(POOLS, {}, 512, 'large') == (2048, None)


def test_explicit_size_must_exist_on_the_cell():
    size, reason = pages.select_page_size(POOLS, {}, 1024, 16384)
    assert size is None
    assert reason == 'has no 16384 KiB pages (has 4, 2048, 1048576 KiB)'


def test_reserved_pages_are_not_free():
    size, reason = pages.select_page_size(POOLS, {}, 2048, 1048576)
    assert size is None
    assert reason == 'needs 2048 MiB of 1048576 KiB pages (2 pages), 1 free'


def test_cell_without_pools():
    assert pages.select_page_size((), {}, 1024, 'any') == (
        None, 'reports no memory page pools')
