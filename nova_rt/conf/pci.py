"""[pci] options."""

from oslo_config import cfg

pci_group = cfg.OptGroup('pci', title='PCI passthrough options')

pci_opts = [
    cfg.MultiStrOpt(
        'device_spec', default=[],
        help='''JSON describing PCI devices that guests may use, as in Nova.
May be given several times. Keys: "vendor_id", "product_id" (hex, "*"
allowed), "address" (a glob string "0000:81:00.*" or a dict of regular
expressions {"domain", "bus", "slot", "function"}) or "devname" (a network
interface name), plus tags such as "physical_network", "trusted",
"remote_managed", "resource_class" and "traits". A PF address also matches its
VFs. Example: {"vendor_id": "8086", "product_id": "10ed",
"physical_network": "physnet1"}'''),
    cfg.MultiStrOpt(
        'alias', default=[],
        help='''JSON naming a kind of PCI device for flavors' extra spec
pci_passthrough:alias. May be given several times. Keys: "name",
"vendor_id", "product_id", "device_type" (type-PCI, type-PF or type-VF),
"numa_policy" (required, preferred, legacy or socket). Example:
{"name": "nic", "vendor_id": "8086", "product_id": "10ed",
"device_type": "type-VF"}'''),
    cfg.BoolOpt(
        'report_in_placement', default=False,
        help='Report PCI devices to placement as child resource providers of '
             'the compute node.'),
]


def register_opts(conf):
    conf.register_group(pci_group)
    conf.register_opts(pci_opts, group=pci_group)


def list_opts():
    return {pci_group: pci_opts}
