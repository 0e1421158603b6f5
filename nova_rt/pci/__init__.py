"""PCI passthrough: udev discovery, device_spec/alias matching, device states and pools.

``device``, ``spec``, ``manager`` and ``report`` are pure; ``udev`` is the only
module that touches pyudev.
"""
