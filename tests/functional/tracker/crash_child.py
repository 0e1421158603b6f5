"""A process that makes claims and moves and says ACK after each one.

Run by test_crash.py, which SIGKILLs it at random moments.  With a third
argument, that many threads make claims at once (each aborts all of its
claims but every 5th, so that the host does not fill up), so that the kill
lands in the middle of group commits.
"""

import sys
import threading

from tests.unit.compute import helpers as h

_SAY = threading.Lock()


def say(line: str) -> None:
    with _SAY:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


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


def concurrent(path: str, start: int, threads: int) -> None:
    rt = h.make_tracker(path, host=h.host_info(vcpus=64, memory_mb=1 << 20,
                                                disk_gb=1 << 20))

    def claimer(index):
        i = start + index
        while True:
            inst = h.instance(h.FLAVOR_1,
                              uuid_=f'00000000-0000-4000-8000-{i:012d}')
            rt.instance_claim(instance=inst)
            say(f'ACK claim {inst["uuid"]}')
            if i % 5:
                rt.abort_instance_claim(instance_uuid=inst['uuid'])
                say(f'ACK abort {inst["uuid"]}')
            i += threads

    for index in range(threads):
        threading.Thread(target=claimer, args=(index,)).start()


if __name__ == '__main__':
    if len(sys.argv) > 3:
        concurrent(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(sys.argv[1], int(sys.argv[2]))
