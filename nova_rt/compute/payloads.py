"""Wire payloads (already validated by the RPC edge) into the core's records.

The transitions never see a wire dict: the tracker shell parses each
argument here first.
"""

from __future__ import annotations

from typing import Optional

from nova_rt import objects


def instance(data: dict) -> objects.Instance:
    return objects.Instance.from_dict(data)


def migration(data: Optional[dict]) -> Optional[objects.Migration]:
    return objects.Migration.from_dict(data) if data is not None else None


def source_page_size_kb(instance_data: dict) -> Optional[int]:
    """The source's guest page size, when the live-migration caller passes
    the instance's NUMA topology (an extra field, ignored otherwise): the
    destination must back guest memory with the same pages."""
    topology = instance_data.get('numa_topology')
    if not isinstance(topology, dict) or not isinstance(topology.get('cells'), list):
        return None
    sizes = {c.get('pagesize_kb') for c in topology['cells'] if isinstance(c, dict)}
    sizes.discard(None)
    if len(sizes) == 1:
        size = sizes.pop()
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
    return None
