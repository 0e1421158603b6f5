"""A small SR-IOV host as plain PciDevices, shared by the unit tests."""

from nova_rt.pci.device import PciDevice

PF0 = '0000:81:00.0'
PF1 = '0000:c1:00.0'


def host_devices():
    devs = [PciDevice(PF0, '8086', '10fb', dev_type='type-PF', numa_node=0,
                      devname='ens1f0')]
    devs += [PciDevice(f'0000:81:10.{i}', '8086', '10ed', dev_type='type-VF',
                       parent_addr=PF0, numa_node=0) for i in range(4)]
    devs.append(PciDevice(PF1, '8086', '10fb', dev_type='type-PF', numa_node=1))
    devs += [PciDevice(f'0000:c1:10.{i}', '8086', '10ed', dev_type='type-VF',
                       parent_addr=PF1, numa_node=1) for i in range(2)]
    devs.append(PciDevice('0000:3b:00.0', '10de', '1eb8', numa_node=0))
    devs.append(PciDevice('0000:d8:00.0', '10de', '1eb8', numa_node=1))
    devs.append(PciDevice('0000:05:00.0', '10de', '1eb8', numa_node=None))
    devs.append(PciDevice('0000:00:1f.2', '8086', 'a282'))  # not in any spec
    return devs
