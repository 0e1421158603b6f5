"""A process that makes claims and moves and says ACK after each one.

Run by test_crash.py, which SIGKILLs it at random moments.
"""

import sys

from tests.unit.compute import helpers as h


def main(path: str, start: int) -> None:
    rt = h.make_tracker(path, host=h.host_info(vcpus=64, memory_mb=1 << 20,
                                                disk_gb=1 << 20))
    i = start
    while True:
        inst = h.instance(h.FLAVOR_1, uuid_=f'00000000-0000-4000-8000-{i:012d}')
        rt.instance_claim(instance=inst)
        print(f'ACK claim {inst["uuid"]}', flush=True)
        if i % 3 == 0:
            mig = h.migration(inst, h.FLAVOR_2,
                              uuid_=f'11111111-0000-4000-8000-{i:012d}')
            rt.resize_claim(instance=inst, migration=mig)
            print(f'ACK resize {mig["uuid"]}', flush=True)
            rt.finish_move(migration_uuid=mig['uuid'])
            print(f'ACK finish {mig["uuid"]}', flush=True)
        if i % 5 == 0:
            rt.abort_instance_claim(instance_uuid=inst['uuid'])
            print(f'ACK abort {inst["uuid"]}', flush=True)
        i += 1


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]))
