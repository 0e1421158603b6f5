"""Every option of the sample config, each with bad values of its kind.

Each value is written into a config file as an operator would and must be
refused by ``validate`` with one line naming ``[group] option``.  An option
added to the sample without bad values here fails
``test_every_option_of_the_sample_is_walked``.
"""

import re

import pytest
from oslo_config import cfg

from nova_rt import conf as nova_conf
from nova_rt import exception
from nova_rt.conf import opts

SAMPLE = 'etc/nova_rt/nova-rt.conf.sample'
UNCREATABLE = '/proc/nonexistent/y'

#: Bad values of the options whose type alone does not say what is bad.
BAD_STRINGS = {
    ('DEFAULT', 'host'): ['-bad-', 'a b', 'x' * 300],
    ('DEFAULT', 'state_path'): [UNCREATABLE],
    ('DEFAULT', 'instances_path'): [UNCREATABLE],
    ('compute', 'cpu_shared_set'): ['0-3,^9-x', '-1', 'a'],
    ('compute', 'cpu_dedicated_set'): ['0-3,^9-x', '3-1'],
    ('libvirt', 'connection_uri'): ['not-a-uri', 'qemu:/ /x'],
    ('pci', 'device_spec'): ['not json', '{"vendor_id": 5}', '[]'],
    ('pci', 'alias'): ['not json', '{"name": "a", "device_type": "type-X"}'],
    ('placement_database', 'connection'): ['nosuchdb://x/y', 'not a url'],
    ('identity', 'principal'): ['a b', 'x' * 300],
    ('identity', 'key_file'): ['/proc/nonexistent/key'],
    ('identity', 'operators'): ['a b'],
    ('identity', 'conductors'): ['a b'],
    ('identity', 'placement_principal'): ['a b'],
    ('upgrade_levels', 'compute'): ['9.9', 'bobcat', '2.0'],
    ('upgrade_levels', 'placement'): ['1.5', 'AUTO'],
    ('metrics', 'bind_host'): ['not a host', '-x.example'],
    ('metrics', 'port'): ['x', '0', '65536', '1.5'],
    ('api', 'bind_host'): ['not a host', '-x.example'],
    ('api', 'bind_port'): ['x', '0', '65536', '1.5'],
}

#: With ``[identity] enforce`` off a missing key is allowed (a host not yet
#: given one sends unsigned messages); with it on, it is refused.
CONTEXT = {('identity', 'key_file'): 'enforce = true\n'}
#: Options not walked here, and why.
NOT_WALKED = {
    # Whether a pool exists is libvirt's answer, not the file's.
    ('libvirt', 'disk_pool'),
    # Checked only with enforce on and a key present: tests/unit/identity.
    ('identity', 'keys_dir'),
}


def _ours():
    return {(getattr(group, 'name', group) or 'DEFAULT', opt.name): opt
            for group, group_opts in opts.list_opts() for opt in group_opts}


def _in_sample():
    found, group = set(), None
    with open(SAMPLE) as f:
        for line in f:
            if line.startswith('['):
                group = line.strip()[1:-1]
            match = re.match(r'#(\w+) =', line)
            if match:
                found.add((group, match.group(1)))
    return found


def _bad_values(opt):
    kind = opt.type
    if isinstance(opt, cfg.BoolOpt):
        return ['maybe', '2']
    if getattr(kind, 'choices', None):
        return ['nosuch']
    if isinstance(opt, cfg.IntOpt):
        values = ['x', '1.5', str(2 ** 70)]
        if kind.min is not None:
            values.append(str(kind.min - 1))
        if kind.max is not None:
            values.append(str(kind.max + 1))
        return values
    if isinstance(opt, cfg.FloatOpt):
        return ['x', 'nan', 'inf', '-inf', str(kind.min - 1)]
    return []


def _cases():
    for (group, name), opt in sorted(_ours().items()):
        for value in _bad_values(opt) + BAD_STRINGS.get((group, name), []):
            yield pytest.param(group, name, value, id=f'{group}.{name}={value[:20]}')


def test_every_option_of_the_sample_is_walked():
    ours = _ours()
    assert set(ours) <= _in_sample(), 'regenerate the sample config'
    unwalked = [key for key, opt in ours.items()
                if not _bad_values(opt) and key not in BAD_STRINGS
                and key not in NOT_WALKED]
    assert unwalked == []


@pytest.mark.parametrize('group, name, value', list(_cases()))
def test_a_bad_value_is_refused_naming_the_option(tmp_path, group, name, value):
    path = tmp_path / 'nova-rt.conf'
    # Everything else valid and writable, so that only this value is wrong.
    body = {'DEFAULT': f'state_path = {tmp_path}/state\n'}
    body[group] = (body.get(group, '') + CONTEXT.get((group, name), '')
                   + f'{name} = {value}\n')
    path.write_text(''.join(f'[{g}]\n{text}' for g, text in body.items()))
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='nova_rt',
         default_config_files=[], default_config_dirs=[])
    service = 'placement' if group.startswith('placement') else 'compute'
    with pytest.raises(exception.ConfigError) as info:
        nova_conf.validate(conf, service)
    message = str(info.value)
    assert f'[{group}] {name}' in message and '\n' not in message
