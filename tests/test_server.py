"""The prefork workers share out keep-alive connections instead of the first to wake taking most."""

import multiprocessing

from refmatch.web.server import _balance


class FakeServer:
    """What ``_balance`` uses of a waitress server: ``readable()`` and ``active_channels``."""

    def __init__(self):
        self.active_channels = {}
        self.accepting = True

    def readable(self):
        return self.accepting


def test_a_worker_listens_only_while_it_holds_no_more_connections_than_any_other():
    counts = multiprocessing.RawArray("i", 2)
    first, second = FakeServer(), FakeServer()
    _balance(first, counts, 0)
    _balance(second, counts, 1)
    assert first.readable() and second.readable()  # 0 and 0: both may accept

    first.active_channels[10] = object()  # the first accepted one
    assert not first.readable()  # 1 > 0: it stops listening ...
    assert second.readable()  # ... and the other takes the next
    assert list(counts) == [1, 0]

    second.active_channels[11] = object()
    assert second.readable() and first.readable()  # 1 and 1 (each publishes its count on its loop's turn)
    del first.active_channels[10]  # a client hung up
    assert first.readable() and not second.readable()


def test_waitress_own_refusal_still_holds():
    counts = multiprocessing.RawArray("i", 2)
    server = FakeServer()
    _balance(server, counts, 0)
    server.accepting = False  # e.g. waitress's connection limit reached
    assert not server.readable()
