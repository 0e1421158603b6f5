"""``python -m nova_rt.pci [--json] [--device-spec JSON]...``: this host's PCI bus.

Under a fixture: ``umockdev-run -d tests/fixtures/pci/sriov-host.umockdev --
python -m nova_rt.pci``.
"""

import argparse
import json
import sys

from nova_rt import exception
from nova_rt.pci import report
from nova_rt.pci import spec as pcispec
from nova_rt.pci import udev


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m nova_rt.pci',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--device-spec', action='append', default=[],
                        help='a [pci] device_spec JSON value (repeatable)')
    parser.add_argument('--json', action='store_true',
                        help='print the devices as JSON')
    args = parser.parse_args(argv)
    try:
        specs = pcispec.parse_device_specs(args.device_spec)
    except exception.InvalidInput as exc:
        print(exc, file=sys.stderr)
        return 2
    devices = udev.discover()
    if args.json:
        print(json.dumps([d.to_dict() for d in devices], indent=2))
    else:
        print(report.summary(devices, specs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
