"""Policy rules: Placement's names and defaults, and a current sample."""

import pathlib
import subprocess
import sys

from oslo_context import context

from nova_rt.placement.rest import policy

ROOT = pathlib.Path(__file__).resolve().parents[4]


def _context(roles, project='p1'):
    return context.RequestContext(user_id='u', project_id=project,
                                  roles=roles)


def test_placement_rule_names_are_all_there():
    names = {rule.name for rule in policy.list_rules()}
    for name in ('placement:resource_providers:list',
                 'placement:resource_providers:inventories:update',
                 'placement:allocations:manage',
                 'placement:allocation_candidates:list',
                 'placement:resource_classes:create', 'placement:usages',
                 'placement:traits:delete', 'placement:reshaper:reshape',
                 'placement:resource_providers:aggregates:update'):
        assert name in names


def test_admin_and_service_pass_others_are_forbidden():
    enforcer = policy.Policy()
    enforcer.authorize(_context(['admin']), 'placement:resource_providers:list',
                       None)
    enforcer.authorize(_context(['service']), 'placement:allocations:update',
                       None)
    for roles in ([], ['member'], ['reader']):
        try:
            enforcer.authorize(_context(roles),
                               'placement:resource_providers:list', None)
        except policy.Forbidden as error:
            assert 'placement:resource_providers:list' in str(error)
        else:
            raise AssertionError(f'{roles} was let through')


def test_a_project_reader_sees_only_its_own_usages():
    enforcer = policy.Policy()
    reader = _context(['reader'], project='p1')
    enforcer.authorize(reader, 'placement:usages', {'project_id': 'p1'})
    try:
        enforcer.authorize(reader, 'placement:usages', {'project_id': 'p2'})
    except policy.Forbidden:
        pass
    else:
        raise AssertionError('a reader saw another project')


def test_reshaper_is_the_service_role_only():
    enforcer = policy.Policy()
    enforcer.authorize(_context(['service']), 'placement:reshaper:reshape',
                       None)
    try:
        enforcer.authorize(_context(['admin']), 'placement:reshaper:reshape',
                           None)
    except policy.Forbidden:
        pass
    else:
        raise AssertionError('admin may reshape: not Placement\'s default')


def test_committed_policy_sample_is_current(tmp_path):
    out = tmp_path / 'policy.yaml.sample'
    subprocess.run(
        [sys.executable, '-c',
         'import sys; from oslo_policy import generator; '
         'sys.exit(generator.generate_sample())',
         '--config-file', 'etc/nova_rt/nova-rt-policy-generator.conf',
         '--output-file', str(out)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
    committed = (ROOT / 'etc' / 'nova_rt' / 'policy.yaml.sample').read_text()
    assert out.read_text() == committed, (
        'etc/nova_rt/policy.yaml.sample is stale: run oslopolicy-sample-'
        'generator --config-file etc/nova_rt/nova-rt-policy-generator.conf')
