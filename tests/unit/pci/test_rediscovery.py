"""The audit's PCI discovery only when it may find something new
(``pci/rediscovery.py``)."""

import pytest

from nova_rt.pci import rediscovery


class Monitor:
    running = True


class Bus:
    def __init__(self):
        self.calls = 0
        self.fail = False

    def __call__(self):
        self.calls += 1
        if self.fail:
            raise OSError('udev went away')
        return [f'device-{self.calls}']


def _made(interval=100.0):
    clock = [0.0]
    bus, monitor = Bus(), Monitor()
    found = rediscovery.Rediscovery(bus, monitor, interval,
                                    clock=lambda: clock[0])
    return found, bus, monitor, clock


def test_discovers_once_then_only_after_a_uevent():
    found, bus, _, _ = _made()
    first = found()
    assert found() is first and bus.calls == 1
    found.changed()
    assert found() == ['device-2'] and bus.calls == 2
    assert found() == ['device-2'] and bus.calls == 2


def test_discovers_again_once_the_interval_is_up():
    found, bus, _, clock = _made(interval=100.0)
    found()
    clock[0] = 99.0
    found()
    assert bus.calls == 1
    clock[0] = 100.0
    found()
    assert bus.calls == 2


@pytest.mark.parametrize('interval, running', [(0, True), (100.0, False)])
def test_every_call_discovers_without_a_monitor_or_with_interval_0(
        interval, running):
    found, bus, monitor, _ = _made(interval)
    monitor.running = running
    found()
    found()
    assert bus.calls == 2


def test_a_failed_discovery_is_tried_again_at_the_next_call():
    found, bus, _, _ = _made()
    found()
    found.changed()
    bus.fail = True
    with pytest.raises(OSError):
        found()
    bus.fail = False
    assert found() == ['device-3']
