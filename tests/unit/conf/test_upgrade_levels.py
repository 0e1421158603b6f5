"""[upgrade_levels]: the caps a rolling upgrade sets, checked at start."""

import pytest
from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception
from nova_rt import rpc
from nova_rt.compute import manager as compute_manager
from nova_rt.compute import methods as compute_methods
from nova_rt.conf import upgrade_levels
from nova_rt.placement import manager as placement_manager
from nova_rt.placement import methods as placement_methods

TABLES = {'compute': compute_methods.TABLE, 'placement': placement_methods.TABLE}


def test_this_release_is_the_last_row_and_matches_the_tables():
    newest = upgrade_levels.RELEASES[list(upgrade_levels.RELEASES)[-1]]
    assert newest == {api: table.version for api, table in TABLES.items()}


def test_the_endpoints_serve_their_table_s_version():
    # A target older than the table would refuse what the clients send.
    assert compute_manager.ComputeManager.target.version == \
        compute_methods.TABLE.version
    assert placement_manager.PlacementManager.target.version == \
        placement_methods.TABLE.version


@pytest.mark.parametrize('value, cap', [
    (None, None), ('auto', 'auto'), ('1.0', '1.0'), ('1.1', '1.1'),
    ('2026.2', '1.0'), ('2027.1', '1.1'),
])
def test_known_values(value, cap):
    assert upgrade_levels.version_cap(value, 'compute') == cap


@pytest.mark.parametrize('value', ['1.2', '2.0', '0.9', 'x', '1', '1.0.1',
                                   'bobcat', 'AUTO', ''])
def test_a_bad_cap_stops_the_service_naming_the_option(tmp_path, value):
    path = tmp_path / 'nova-rt.conf'
    path.write_text(f'[upgrade_levels]\ncompute = {value}\n')
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='nova_rt',
         default_config_files=[], default_config_dirs=[])
    conf.set_override('state_path', str(tmp_path))
    with pytest.raises(exception.ConfigError) as info:
        nova_conf.validate(conf, 'compute')
    message = str(info.value)
    assert '[upgrade_levels] compute:' in message and '\n' not in message


def test_auto_steps_down_once_per_peer_on_unsupported_version():
    caps = rpc.VersionCaps(compute_methods.TABLE, 'compute', 'auto')
    assert caps.can_send_version('1.1', 'old')
    refused = type('RemoteError', (Exception,), {'exc_type': 'UnsupportedVersion'})()
    assert caps.step_down('old', '1.1', refused)
    assert not caps.can_send_version('1.1', 'old')
    assert caps.can_send_version('1.1', 'new')
    # Nothing older than 1.0 to step down to; other errors are not ours.
    assert not caps.step_down('old', '1.0', refused)
    other = type('RemoteError', (Exception,), {'exc_type': 'InvalidInput'})()
    assert not caps.step_down('new', '1.1', other)


def test_a_fixed_cap_never_steps_down():
    caps = rpc.VersionCaps(compute_methods.TABLE, 'compute', '1.1')
    refused = type('RemoteError', (Exception,), {'exc_type': 'UnsupportedVersion'})()
    assert not caps.step_down('old', '1.1', refused)
