"""gc.freeze at service start: what lived is exempt, later cycles are still
freed."""

import gc
import weakref

from nova_rt import gcutil


class _Node:
    pass


def test_freeze_exempts_startup_objects_and_frees_later_cycles():
    before = _Node()
    try:
        frozen = gcutil.freeze_startup_objects()
        # Frozen objects another thread lets go of (a test's leftover
        # thread ending) leave the permanent generation: it only shrinks.
        assert 0 < gc.get_freeze_count() <= frozen
        assert not any(o is before for o in gc.get_objects())

        after = _Node()
        after.self = after            # a cycle only the collector frees
        ref = weakref.ref(after)
        del after
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()
