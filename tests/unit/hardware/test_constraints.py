"""Nova's CPU and NUMA vocabulary: flavor extra specs merged with image properties."""

import pytest

from nova_rt import exception
from nova_rt.compute import usage
from nova_rt.hardware import constraints
from nova_rt.hardware.constraints import NumaRequest
from nova_rt.objects import Flavor


def flavor(vcpus=4, memory_mb=2048, **extra_specs):
    return Flavor(name='f', vcpus=vcpus, memory_mb=memory_mb, root_gb=1,
                  ephemeral_gb=0, swap=0, extra_specs=extra_specs)


def request(image=None, vcpus=4, memory_mb=2048, **specs):
    return constraints.numa_request(flavor(vcpus, memory_mb, **specs), image)


def refused(*names, image=None, vcpus=4, memory_mb=2048, **specs):
    with pytest.raises(exception.InvalidInput) as info:
        request(image, vcpus, memory_mb, **specs)
    for name in names:
        assert name in str(info.value)
    return str(info.value)


def resources(image=None, vcpus=4, **specs):
    return usage.flavor_resources(flavor(vcpus, **specs), False, image)


# --- mixed ----------------------------------------------------------------------

@pytest.mark.parametrize('mask, pinned', [
    ('^0-1', {2, 3}), ('2-3', {2, 3}), ('0,3', {0, 3}), ('^0', {1, 2, 3}), ('1', {1})])
def test_mixed_pins_the_masked_vcpus(mask, pinned):
    req = request(**{'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': mask})
    assert req.cpu_policy == 'mixed' and req.dedicated_mask == frozenset(pinned)
    assert req.cells[0].pinned == tuple(sorted(pinned))
    assert resources(**{'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': mask}) == {
        'VCPU': 4 - len(pinned), 'PCPU': len(pinned), 'MEMORY_MB': 2048, 'DISK_GB': 1}


@pytest.mark.parametrize('specs, names', [
    ({'hw:cpu_policy': 'mixed'}, ['hw:cpu_policy', 'hw:cpu_dedicated_mask']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '0-3'}, ['hw:cpu_dedicated_mask']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '^0-3'}, ['hw:cpu_dedicated_mask']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '4'}, ['hw:cpu_dedicated_mask']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': 'x'}, ['hw:cpu_dedicated_mask']),
    ({'hw:cpu_policy': 'dedicated', 'hw:cpu_dedicated_mask': '1'},
     ['hw:cpu_dedicated_mask', 'mixed']),
    ({'hw:cpu_dedicated_mask': '1'}, ['hw:cpu_dedicated_mask', 'mixed']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '1', 'hw:cpu_realtime': 'yes',
      'hw:cpu_realtime_mask': '^0'}, ['hw:cpu_dedicated_mask', 'hw:cpu_realtime_mask']),
])
def test_mixed_errors_name_the_keys(specs, names):
    refused(*names, **specs)


def test_mixed_with_a_realtime_mask_pins_the_realtime_vcpus():
    req = request(**{'hw:cpu_policy': 'mixed', 'hw:cpu_realtime': 'yes',
                     'hw:cpu_realtime_mask': '^0'})
    assert req.dedicated_mask == {1, 2, 3}
    refused('hw:cpu_realtime', **{'hw:cpu_realtime': 'yes', 'hw:cpu_realtime_mask': '^0'})
    refused('hw:cpu_realtime_mask', **{'hw:cpu_policy': 'dedicated',
                                       'hw:cpu_realtime': 'true'})
    assert request(**{'hw:cpu_policy': 'dedicated', 'hw:cpu_realtime': 'true',
                      'hw:emulator_threads_policy': 'share'}).dedicated
    # As Nova: mixed and realtime without a mask pins every vCPU, as mixed.
    every = request(**{'hw:cpu_policy': 'mixed', 'hw:cpu_realtime': 'yes',
                       'hw:emulator_threads_policy': 'isolate'})
    assert every.cpu_policy == 'mixed' and every.dedicated_mask == {0, 1, 2, 3}
    assert resources(**{'hw:cpu_policy': 'mixed', 'hw:cpu_realtime': 'yes',
                        'hw:emulator_threads_policy': 'isolate'})['PCPU'] == 5


# --- thread and emulator policies ---------------------------------------------------

@pytest.mark.parametrize('policy', ['prefer', 'isolate', 'require'])
def test_thread_policies_need_pinned_cpus(policy):
    assert request(**{'hw:cpu_policy': 'dedicated',
                      'hw:cpu_thread_policy': policy}).thread_policy == policy
    assert request(**{'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '0',
                      'hw:cpu_thread_policy': policy}).thread_policy == policy
    refused('hw:cpu_thread_policy', 'hw:cpu_policy',
            **{'hw:cpu_policy': 'shared', 'hw:cpu_thread_policy': policy})
    refused('hw:cpu_thread_policy', **{'hw:cpu_thread_policy': policy})


def test_bad_policy_values_name_the_key():
    refused('hw:cpu_thread_policy', **{'hw:cpu_policy': 'dedicated',
                                       'hw:cpu_thread_policy': 'never'})
    refused('hw:emulator_threads_policy', **{'hw:cpu_policy': 'dedicated',
                                             'hw:emulator_threads_policy': 'own'})
    refused('hw_cpu_policy', image={'hw_cpu_policy': 'pinned'})
    refused('hw_cpu_thread_policy', image={'hw_cpu_thread_policy': 'x'},
            **{'hw:cpu_policy': 'dedicated'})


def test_hyperthreading_trait_is_a_thread_policy():
    assert request(**{'hw:cpu_policy': 'dedicated',
                      'trait:HW_CPU_HYPERTHREADING': 'forbidden'}).thread_policy == 'isolate'
    assert request(**{'hw:cpu_policy': 'dedicated',
                      'trait1:HW_CPU_HYPERTHREADING': 'required'}).thread_policy == 'require'
    assert request({'traits_required': ['HW_CPU_HYPERTHREADING']},
                   **{'hw:cpu_policy': 'dedicated'}).thread_policy == 'require'
    refused('trait:HW_CPU_HYPERTHREADING', 'hw:cpu_thread_policy',
            **{'hw:cpu_policy': 'dedicated', 'hw:cpu_thread_policy': 'prefer',
               'trait:HW_CPU_HYPERTHREADING': 'required'})
    # As Nova: a shared guest may not ask for or against SMT this way either.
    refused('trait:HW_CPU_HYPERTHREADING', **{'trait:HW_CPU_HYPERTHREADING': 'required'})


def test_emulator_threads_isolate_takes_one_more_pcpu():
    specs = {'hw:cpu_policy': 'dedicated', 'hw:emulator_threads_policy': 'isolate'}
    assert request(**specs).emulator_threads_isolate
    assert resources(**specs)['PCPU'] == 5
    mixed = {'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '^0',
             'hw:emulator_threads_policy': 'isolate'}
    assert resources(**mixed) == {'VCPU': 1, 'PCPU': 4, 'MEMORY_MB': 2048, 'DISK_GB': 1}
    assert not request(**{'hw:cpu_policy': 'dedicated',
                          'hw:emulator_threads_policy': 'share'}).emulator_threads_isolate
    refused('hw:emulator_threads_policy', **{'hw:emulator_threads_policy': 'isolate'})
    # Nova has no image property for it: the image cannot ask.
    assert not request({'hw_emulator_threads_policy': 'isolate'},
                       **{'hw:cpu_policy': 'dedicated'}).emulator_threads_isolate


# --- resources:PCPU / resources:VCPU ------------------------------------------------

def test_explicit_pcpu_means_a_pinned_guest():
    req = request(**{'resources:PCPU': '4'})
    assert req.dedicated and req.cpu_policy == 'dedicated'
    assert resources(**{'resources:PCPU': '4'}) == {'PCPU': 4, 'MEMORY_MB': 2048, 'DISK_GB': 1}
    specs = {'resources:PCPU': '5', 'hw:emulator_threads_policy': 'isolate'}
    assert request(**specs).emulator_threads_isolate
    assert resources(**specs)['PCPU'] == 5


@pytest.mark.parametrize('specs, names', [
    ({'resources:PCPU': '3'}, ['resources:PCPU=3', '4']),
    ({'resources:PCPU': '4', 'hw:emulator_threads_policy': 'isolate'}, ['resources:PCPU', '5']),
    ({'resources:PCPU': '4', 'hw:cpu_policy': 'dedicated'}, ['resources:PCPU', 'hw:cpu_policy']),
    ({'resources:VCPU': '4', 'hw:cpu_policy': 'shared'}, ['resources:VCPU', 'hw:cpu_policy']),
    ({'resources:VCPU': '2', 'resources:PCPU': '4'}, ['resources:PCPU', 'resources:VCPU']),
    ({'resources:PCPU': 'four'}, ['resources:PCPU']),
    ({'resources:VCPU': '2', 'hw:cpu_thread_policy': 'prefer'},
     ['hw:cpu_thread_policy', 'resources:VCPU']),
])
def test_explicit_cpu_resources_follow_novas_rules(specs, names):
    refused(*names, **specs)


def test_explicit_cpu_resources_with_an_image_policy_are_refused():
    refused('resources:VCPU', 'hw_cpu_policy', image={'hw_cpu_policy': 'dedicated'},
            **{'resources:VCPU': '4'})


def test_explicit_vcpu_and_other_overrides():
    assert resources(**{'resources:VCPU': '2'}) == {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 1}
    assert request(**{'resources:VCPU': '2'}) is None
    assert resources(**{'resources:VCPU': '0', 'resources:DISK_GB': '0'}) == {'MEMORY_MB': 2048}
    with pytest.raises(exception.InvalidInput, match='resources:MEMORY_MB'):
        resources(**{'resources:MEMORY_MB': 'lots'})


# --- asymmetric guest cells -------------------------------------------------------------

def test_asymmetric_cells():
    req = request(vcpus=6, memory_mb=3072, **{
        'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0', 'hw:numa_cpus.1': '1-5',
        'hw:numa_mem.0': '1024', 'hw:numa_mem.1': '2048', 'hw:cpu_policy': 'dedicated'})
    assert [(c.cpus, c.memory_mb) for c in req.cells] == [((0,), 1024),
                                                          ((1, 2, 3, 4, 5), 2048)]
    # Odd splits that hw:numa_nodes alone refuses.
    req = request(vcpus=3, memory_mb=1000, **{
        'hw:numa_nodes': 2, 'hw:numa_cpus.0': '0,2', 'hw:numa_cpus.1': '1',
        'hw:numa_mem.0': '600', 'hw:numa_mem.1': '400'})
    assert [c.cpus for c in req.cells] == [(0, 2), (1,)]
    refused('hw:numa_nodes=2', vcpus=3, memory_mb=1000, **{'hw:numa_nodes': '2'})


def test_asymmetric_mixed_cells_pin_per_node():
    req = request(**{'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0,3', 'hw:numa_cpus.1': '1-2',
                     'hw:numa_mem.0': '1024', 'hw:numa_mem.1': '1024',
                     'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '2-3'})
    assert [(c.cpus, c.pinned) for c in req.cells] == [((0, 3), (3,)), ((1, 2), (2,))]


@pytest.mark.parametrize('layout, names', [
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_mem.0': '1024'}, ['hw:numa_cpus.K', 'hw:numa_mem.K']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-3', 'hw:numa_mem.0': '1024'},
     ['hw:numa_mem.K']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.2': '2-3', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.K']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '1-3', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.1', 'vCPU 1']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-4', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.1', 'vCPU 4']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.K', '[3]']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-3', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1000'}, ['hw:numa_mem.K', '2024']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': 'two', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.1']),
    ({'hw:numa_cpus.0': '0-3', 'hw:numa_cpus.1': '', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': '1024'}, ['hw:numa_cpus.1']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-3', 'hw:numa_mem.0': '2048',
      'hw:numa_mem.1': '0'}, ['hw:numa_mem.1']),
    ({'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-3', 'hw:numa_mem.0': '1024',
      'hw:numa_mem.1': 'a lot'}, ['hw:numa_mem.1']),
])
def test_bad_layouts_name_the_key(layout, names):
    refused(*names, **{'hw:numa_nodes': '2', **layout})


def test_layout_keys_alone_ask_for_nothing():
    # As Nova: hw:numa_cpus.K without anything that asks for NUMA is ignored.
    assert request(**{'hw:numa_cpus.0': '0-3', 'hw:numa_mem.0': '2048'}) is None
    req = request(**{'hw:cpu_policy': 'dedicated', 'hw:numa_cpus.0': '0-3',
                     'hw:numa_mem.0': '2048'})
    assert req.numa_nodes == 1 and req.node_cpus == (frozenset(range(4)),)


# --- image properties ---------------------------------------------------------------

def test_image_asks_where_the_flavor_says_nothing():
    req = request({'hw_cpu_policy': 'dedicated', 'hw_cpu_thread_policy': 'require',
                   'hw_numa_nodes': 2})
    assert req.dedicated and req.thread_policy == 'require' and req.numa_nodes == 2
    assert resources({'hw_cpu_policy': 'dedicated'})['PCPU'] == 4
    req = request({'hw_numa_nodes': '2', 'hw_numa_cpus.0': '0', 'hw_numa_cpus.1': '1-3',
                   'hw_numa_mem.0': 512, 'hw_numa_mem.1': '1536'})
    assert [(c.cpus, c.memory_mb) for c in req.cells] == [((0,), 512), ((1, 2, 3), 1536)]
    mixed = request({'hw_cpu_policy': 'mixed'}, **{'hw:cpu_dedicated_mask': '0'})
    assert mixed.dedicated_mask == {0}


@pytest.mark.parametrize('specs, image, names', [
    # ImageCPUPinningForbidden
    ({'hw:cpu_policy': 'shared'}, {'hw_cpu_policy': 'dedicated'},
     ['hw:cpu_policy', 'hw_cpu_policy']),
    ({'hw:cpu_policy': 'shared'}, {'hw_cpu_policy': 'mixed'}, ['hw:cpu_policy', 'hw_cpu_policy']),
    ({'hw:cpu_policy': 'mixed', 'hw:cpu_dedicated_mask': '0'}, {'hw_cpu_policy': 'dedicated'},
     ['hw:cpu_policy', 'hw_cpu_policy']),
    # ImageCPUThreadPolicyForbidden
    ({'hw:cpu_policy': 'dedicated', 'hw:cpu_thread_policy': 'isolate'},
     {'hw_cpu_thread_policy': 'require'}, ['hw:cpu_thread_policy', 'hw_cpu_thread_policy']),
    # ImageNUMATopologyForbidden, even when they agree
    ({'hw:numa_nodes': '2'}, {'hw_numa_nodes': '2'}, ['hw:numa_nodes', 'hw_numa_nodes']),
    ({'hw:numa_nodes': '2', 'hw:numa_cpus.0': '0-1', 'hw:numa_cpus.1': '2-3',
      'hw:numa_mem.0': '1024', 'hw:numa_mem.1': '1024'},
     {'hw_numa_cpus.0': '0-3'}, ['hw:numa_cpus.K', 'hw_numa_cpus.K']),
    # MemoryPageSizeForbidden
    ({}, {'hw_mem_page_size': 'large'}, ['hw:mem_page_size', 'hw_mem_page_size']),
    ({'hw:mem_page_size': 'small'}, {'hw_mem_page_size': 'large'},
     ['hw:mem_page_size', 'hw_mem_page_size']),
    ({'hw:mem_page_size': '2048'}, {'hw_mem_page_size': '2048'},
     ['hw:mem_page_size', 'hw_mem_page_size']),
    ({'hw:mem_page_size': 'large'}, {'hw_mem_page_size': 'huge'}, ['hw_mem_page_size']),
    # ImagePCINUMAPolicyForbidden
    ({'hw:pci_numa_affinity_policy': 'required'}, {'hw_pci_numa_affinity_policy': 'preferred'},
     ['hw:pci_numa_affinity_policy', 'hw_pci_numa_affinity_policy']),
    ({}, {'hw_numa_nodes': 'two'}, ['hw_numa_nodes']),
])
def test_image_conflicts_name_both_keys(specs, image, names):
    with pytest.raises(exception.InvalidInput) as info:
        request(image, **specs)
        constraints.pci_numa_policy(flavor(**specs), image)
    for name in names:
        assert name in str(info.value)


def test_image_chooses_within_what_the_flavor_allows():
    assert request({'hw_mem_page_size': '2MB'}, **{'hw:mem_page_size': 'large'}).page_size == 2048
    assert request({'hw_mem_page_size': 'small'},
                   **{'hw:mem_page_size': 'any'}).page_size == 'small'
    assert request({'hw_cpu_policy': 'dedicated'}, **{'hw:cpu_policy': 'dedicated'}).dedicated
    # As Nova: a flavor's prefer is kept, whatever the image says.
    assert request({'hw_cpu_thread_policy': 'isolate'},
                   **{'hw:cpu_policy': 'dedicated',
                      'hw:cpu_thread_policy': 'prefer'}).thread_policy == 'prefer'
    assert request({'hw_cpu_thread_policy': 'isolate'},
                   **{'hw:cpu_policy': 'dedicated'}).thread_policy == 'isolate'
    assert request({'hw_cpu_policy': 'shared'}, **{'hw:cpu_policy': 'dedicated'}).dedicated
    assert constraints.pci_numa_policy(
        flavor(), {'hw_pci_numa_affinity_policy': 'socket'}) == 'socket'
    assert constraints.pci_extra_specs(flavor(), {'hw_pci_numa_affinity_policy': 'required'}) == {
        'hw:pci_numa_affinity_policy': 'required'}


def test_unknown_image_properties_are_ignored():
    assert request({'hw_disk_bus': 'scsi', 'os_distro': 'debian'}) is None


def test_request_backstop_checks():
    with pytest.raises(exception.InvalidInput, match='partition'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=2, node_cpus=({0, 1}, set()),
                    node_memory_mb=(256, 256))
    with pytest.raises(exception.InvalidInput, match='together'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=1, node_cpus=({0, 1},))
    with pytest.raises(exception.InvalidInput, match='dedicated_mask'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=1, dedicated_mask={0, 2})
    with pytest.raises(exception.InvalidInput, match='dedicated_mask'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=1, dedicated=True, dedicated_mask={0})
    with pytest.raises(exception.InvalidInput, match='thread_policy'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=1, thread_policy='isolate')
    with pytest.raises(exception.InvalidInput, match='emulator'):
        NumaRequest(vcpus=2, memory_mb=512, numa_nodes=1, emulator_threads_isolate=True)
