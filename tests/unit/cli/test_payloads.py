"""Argument types and RPC payloads of the nova-rt CLI."""

import argparse

import pytest

from nova_rt.cli import payloads
from nova_rt.compute import methods


def test_resources_argument():
    assert payloads.resources_arg('VCPU=2, MEMORY_MB=2048') == {
        'VCPU': 2, 'MEMORY_MB': 2048}
    assert payloads.resources_arg('CUSTOM_GPU=1') == {'CUSTOM_GPU': 1}


@pytest.mark.parametrize('text,words', [
    ('VCPU', 'not RESOURCE_CLASS=N'),
    ('vcpu=2', 'not RESOURCE_CLASS=N'),
    ('VCPU=two', 'whole number'),
    ('VCPU=0', 'whole number'),
    ('VCPU=1,VCPU=2', 'given twice'),
    ('', 'not RESOURCE_CLASS=N'),
])
def test_bad_resources_are_usage_errors(text, words):
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        payloads.resources_arg(text)


def test_small_argument_types():
    assert payloads.key_value_arg('hw:cpu_policy=dedicated') == (
        'hw:cpu_policy', 'dedicated')
    assert payloads.key_value_arg('pci_passthrough:alias=nic:1') == (
        'pci_passthrough:alias', 'nic:1')
    for bad, func in (('novalue', payloads.key_value_arg),
                      ('=x', payloads.key_value_arg),
                      ('not-a-uuid', payloads.uuid_arg),
                      ('-1', payloads.non_negative_int),
                      ('0', payloads.positive_int),
                      ('lower_case', payloads.trait_arg)):
        with pytest.raises(argparse.ArgumentTypeError):
            func(bad)
    upper = '6F9619FF-8B86-D011-B42D-00CF4FC964FF'
    assert payloads.uuid_arg(upper) == upper.lower()


def test_payloads_pass_the_daemons_schemas():
    flavor = payloads.flavor(2, 2048, 10, extra_specs=[('hw:cpu_policy', 'dedicated')])
    assert flavor['extra_specs'] == {'hw:cpu_policy': 'dedicated'}
    assert flavor['name'] == 'cli.2c2048m10g'
    instance = payloads.instance(payloads.new_uuid(), flavor, 'p1', 'u1')
    methods.TABLE.validate('instance_claim', {'instance': instance})
    new = payloads.flavor(4, 4096, 10)
    migration = payloads.migration(payloads.new_uuid(), instance['uuid'], 'resize',
                                   'h1', 'h1', flavor, new)
    methods.TABLE.validate('resize_claim', {'instance': instance, 'migration': migration})
    cold = payloads.migration(payloads.new_uuid(), instance['uuid'], 'migrate',
                              'h1', 'h2', flavor, flavor)
    assert cold['migration_type'] == 'migration'
    assert (cold['source_node'], cold['dest_node']) == ('h1', 'h2')
    confirm = payloads.migration(cold['uuid'], instance['uuid'], 'migration',
                                 'h1', 'h2', None, None, status='confirming')
    methods.TABLE.validate('drop_move_claim_at_source', {'migration': confirm})
