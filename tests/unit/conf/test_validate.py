"""Every bad value stops the service at start with one line naming the option.

Each test parses a real config file into a fresh ``ConfigOpts`` with nova_rt's
options registered, exactly as a service does, then calls ``validate``.
"""

import pytest
from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception


def _load(tmp_path, body):
    path = tmp_path / 'nova-rt.conf'
    path.write_text(body)
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='nova_rt',
         default_config_files=[], default_config_dirs=[])
    return conf


def _error(tmp_path, body, service='compute'):
    conf = _load(tmp_path, body)
    with pytest.raises(exception.ConfigError) as info:
        nova_conf.validate(conf, service=service)
    message = str(info.value)
    assert '\n' not in message, 'the error must fit on one line'
    return message


@pytest.mark.parametrize('option, value', [
    ('cpu_allocation_ratio', '0'),
    ('ram_allocation_ratio', '-1.5'),
    ('disk_allocation_ratio', '0.0'),
    ('initial_cpu_allocation_ratio', '0'),
    ('initial_ram_allocation_ratio', '-2'),
    ('initial_disk_allocation_ratio', '0'),
])
def test_ratio_of_zero_or_below_is_refused(tmp_path, option, value):
    message = _error(tmp_path, f'[DEFAULT]\n{option} = {value}\n')
    assert f'[DEFAULT] {option}:' in message
    assert 'greater than or equal to 0.0001' in message
    # oslo.config's internal repr is noise to an operator; the file is enough.
    assert 'LocationInfo' not in message
    assert str(tmp_path / 'nova-rt.conf') in message


@pytest.mark.parametrize('option', [
    'reserved_host_memory_mb', 'reserved_host_disk_mb', 'reserved_host_cpus'])
def test_negative_reserved_amount_is_refused(tmp_path, option):
    message = _error(tmp_path, f'[DEFAULT]\n{option} = -1\n')
    assert f'[DEFAULT] {option}:' in message
    assert 'greater than or equal to 0' in message


@pytest.mark.parametrize('option', ['cpu_shared_set', 'cpu_dedicated_set'])
def test_malformed_cpu_set_is_refused(tmp_path, option):
    message = _error(tmp_path, f'[compute]\n{option} = 0-3,^9-x\n')
    assert f'[compute] {option}:' in message
    assert "'^9-x'" in message


@pytest.mark.parametrize('value', ['5-2', 'a', '0-3,^0-3'])
def test_cpu_set_backwards_garbage_or_empty_is_refused(tmp_path, value):
    message = _error(tmp_path, f'[compute]\ncpu_dedicated_set = {value}\n')
    assert '[compute] cpu_dedicated_set:' in message


def test_overlapping_shared_and_dedicated_sets_are_refused(tmp_path):
    message = _error(tmp_path, '[compute]\ncpu_shared_set = 0-3\n'
                               'cpu_dedicated_set = 2-5,^4\n')
    assert 'cpu_shared_set' in message and 'cpu_dedicated_set' in message
    assert 'overlap on CPUs 2-3' in message


def test_unknown_backend_is_refused(tmp_path):
    message = _error(tmp_path, '[DEFAULT]\nconcurrency_backend = gevent\n')
    assert '[DEFAULT] concurrency_backend:' in message
    assert "'gevent'" in message and 'threading' in message


def test_unknown_candidate_order_is_refused_by_placement(tmp_path):
    message = _error(tmp_path, '[placement]\ncandidate_order = random\n',
                     service='placement')
    assert '[placement] candidate_order:' in message


def test_non_integer_interval_is_refused(tmp_path):
    message = _error(tmp_path, '[DEFAULT]\nupdate_resources_interval = soon\n')
    assert '[DEFAULT] update_resources_interval:' in message


def test_first_bad_value_is_reported_even_with_good_ones_around(tmp_path):
    message = _error(tmp_path, '[DEFAULT]\nreserved_host_cpus = 2\n'
                               'heartbeat_interval = 0\n'
                               '[compute]\ncpu_shared_set = 0-3\n')
    assert '[DEFAULT] heartbeat_interval:' in message


def test_reserved_larger_than_the_host_is_not_an_error(tmp_path):
    # Nova accepts it and reports negative free figures; so do we.
    conf = _load(tmp_path, '[DEFAULT]\nreserved_host_memory_mb = 1073741824\n'
                           'reserved_host_disk_mb = 1073741824\n'
                           'reserved_host_cpus = 100000\n')
    nova_conf.validate(conf)
    assert conf.reserved_host_memory_mb == 1073741824
    assert conf.reserved_host_cpus == 100000


def test_a_full_good_configuration_passes(tmp_path):
    conf = _load(tmp_path, '''[DEFAULT]
cpu_allocation_ratio = 16.0
ram_allocation_ratio = 1.5
concurrency_backend = eventlet
[compute]
cpu_shared_set = 0-3,^2,8
cpu_dedicated_set = 4-7
[libvirt]
connection_uri = test:///default
[placement]
candidate_order = pack
''')
    nova_conf.validate(conf)
    assert nova_conf.cpu_sets(conf) == ({0, 1, 3, 8}, {4, 5, 6, 7})


def test_placement_does_not_need_the_compute_pci_options(tmp_path):
    # Each service ignores the other's groups: placement validates without
    # parsing [pci] at all.
    conf = _load(tmp_path, '[pci]\nalias = not json\n'
                           '[placement]\ncandidate_order = pack\n')
    nova_conf.validate(conf, service='placement')
    assert conf.placement.candidate_order == 'pack'


@pytest.mark.parametrize('option', ['cpu_allocation_ratio', 'ram_allocation_ratio',
                                    'initial_disk_allocation_ratio'])
@pytest.mark.parametrize('value', ['nan', 'inf'])
def test_a_ratio_that_is_not_finite_is_refused(tmp_path, option, value):
    message = _error(tmp_path, f'[DEFAULT]\n{option} = {value}\n')
    assert f'[DEFAULT] {option}:' in message and 'finite' in message


def test_a_libvirt_uri_that_is_not_one_is_refused(tmp_path):
    message = _error(tmp_path, f'[DEFAULT]\nstate_path = {tmp_path}\n'
                               '[libvirt]\nconnection_uri = not-a-uri\n')
    assert '[libvirt] connection_uri:' in message


@pytest.mark.parametrize('option', ['state_path', 'instances_path'])
def test_a_directory_that_cannot_be_made_is_refused(tmp_path, option):
    body = f'[DEFAULT]\nstate_path = {tmp_path}\n{option} = /proc/nonexistent/y\n'
    message = _error(tmp_path, body)
    assert f'[DEFAULT] {option}:' in message and '/proc/nonexistent/y' in message


def test_a_garbled_transport_url_is_refused_without_its_secret(tmp_path):
    conf = _load(tmp_path, f'[DEFAULT]\nstate_path = {tmp_path}\n'
                           'transport_url = rabbit://u:s3cr3t@h:notaport/\n')
    nova_conf.validate(conf)
    with pytest.raises(exception.ConfigError) as info:
        nova_conf.check_transport_url(conf)
    message = str(info.value)
    assert '[DEFAULT] transport_url:' in message and 's3cr3t' not in message


@pytest.mark.parametrize('url', ['nosuchdb://x/y', 'not a url'])
def test_a_database_url_of_no_known_dialect_is_refused(tmp_path, url):
    message = _error(tmp_path, f'[DEFAULT]\nstate_path = {tmp_path}\n'
                               f'[placement_database]\nconnection = {url}\n',
                     service='placement')
    assert '[placement_database] connection:' in message
