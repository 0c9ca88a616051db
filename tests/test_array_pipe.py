"""array_pipe.py: messages whose arrays travel through shared memory arrive whole, stay the
receiver's own, and leave no shared memory behind."""
import multiprocessing
import os
import socket

import numpy as np
import pytest

from minisegnet.array_pipe import ArrayPipe
from helpers import shared_memory_blocks as blocks

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory lives in /dev/shm")




@pytest.fixture
def ends():
    before = blocks()
    here, there = multiprocessing.Pipe()
    a, b = ArrayPipe(here), ArrayPipe(there)
    yield a, b
    a.close()
    b.close()
    assert blocks() == before


def _message(rng, scale=1):
    return ("step",
            [rng.standard_normal((8 * scale, 3, 3, 3)).astype(np.float32), None,
             rng.standard_normal(5)],                                   # float64 beside float32
            {"targets": rng.integers(0, 4, (2, 16, 16)), "label": "x"},
            rng.standard_normal((6, 4))[:, ::2],                        # not contiguous: in the pickle
            np.arange(3, dtype=np.int8), 0.25)


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_a_message_arrives_whole_with_its_arrays_dtypes_and_shapes(ends):
    a, b = ends
    before = blocks()
    sent = _message(np.random.default_rng(0))
    a.send(sent)
    assert blocks() - before == {a.block.name.lstrip("/")}        # the arrays went through shared memory
    assert _same(sent, b.recv())
    b.send(("answer", np.ones(3)))
    assert _same(a.recv(), ("answer", np.ones(3)))


def test_received_arrays_are_the_receivers_own(ends):
    """The next message reuses the block: what came before must not change under the receiver."""
    a, b = ends
    first = np.arange(1000.0)
    a.send([first])
    got = b.recv()[0]
    b.send(None)
    a.recv()
    block = a.block.name
    a.send([np.zeros(1000)])
    assert a.block.name == block                   # the same block, written again
    b.recv()
    assert np.array_equal(got, first) and got.flags.writeable


def test_two_messages_without_an_answer_between_do_not_overwrite_each_other(ends):
    """DataParallel sends the model, then the first step, before any answer: the second must
    go into a fresh block, not over the first one that is not read yet; the first block is
    removed once the other end answers."""
    a, b = ends
    rng = np.random.default_rng(1)
    m1, m2 = _message(rng), _message(rng)
    a.send(m1)
    first = a.block.name.lstrip("/")
    a.send(m2)
    assert _same(b.recv(), m1) and _same(b.recv(), m2)
    assert first in blocks()
    b.send("ok")
    a.recv()
    assert first not in blocks()


def test_a_larger_message_gets_a_larger_block():
    here, there = multiprocessing.Pipe()
    a, b = ArrayPipe(here), ArrayPipe(there)
    rng = np.random.default_rng(2)
    for scale in (1, 64, 1, 512):
        sent = _message(rng, scale)
        a.send(sent)
        assert _same(b.recv(), sent)
        b.send(sent)
        assert _same(a.recv(), sent)
    assert a.block.size >= 512 * 8 * 27 * 4
    a.close()
    b.close()


def test_an_end_never_closed_removes_its_blocks_when_collected():
    before = blocks()
    here, there = multiprocessing.Pipe()
    a = ArrayPipe(here)
    a.send([np.ones(100)])
    assert blocks() != before
    del a
    assert blocks() == before
    there.close()


def test_closing_after_the_other_end_removed_our_block_is_no_error():
    """``close(remove_mapped=True)`` (a worker found dead) may remove a block whose owner is
    still alive: the owner's own close must still finish."""
    here, there = multiprocessing.Pipe()
    a, b = ArrayPipe(here), ArrayPipe(there)
    a.send([np.ones(100)])
    b.recv()
    b.close(remove_mapped=True)
    a.close()
    assert a.block is None


def test_without_shared_memory_every_message_goes_through_the_pipe():
    here, there = multiprocessing.Pipe()
    a, b = ArrayPipe(here, shared_memory=False), ArrayPipe(there, shared_memory=False)
    before = blocks()
    sent = _message(np.random.default_rng(3))
    a.send(sent)
    assert _same(b.recv(), sent) and a.block is None and blocks() == before
    a.close()
    b.close()


@pytest.mark.skipif(not hasattr(socket, "SO_SNDBUF"), reason="needs a socket pair")
def test_the_pipe_buffer_holds_less_than_a_megabyte():
    """The docs' reason for shared memory: a pipe (on Linux a socket pair) holds a few hundred
    kilobytes, so a message of megabytes must wait for the reader several times."""
    here, there = multiprocessing.Pipe()
    raw = socket.socket(fileno=os.dup(here.fileno()))
    raw.setblocking(False)
    held = 0
    try:
        while held < 2**24:
            held += raw.send(b"x" * 4096)
    except BlockingIOError:
        pass
    finally:
        raw.close()
        here.close()
        there.close()
    assert 2**14 < held < 2**20, held
