"""A pipe between two processes whose arrays travel through shared memory.

``multiprocessing``'s ``Connection.send`` pickles a message and writes the
bytes into an operating-system pipe (on Linux a socket pair, whose buffer
held about 200 KB on the machine of docs/benchmarks.md; a test measures
it): a message of megabytes goes through in several fills, each waiting
for the other process to read the last. ``data_parallel.py`` sends every worker the
weights and its slice of the batch each step and gets the gradients and
outputs back: about 1.6 MB a step for the default U-Net, over 60 MB for a
U-Net of base 32 and depth 4 (30 MiB of weights out, as much gradient back).

Here a message is pickled with protocol 5, which hands every contiguous
array's memory to a callback instead of copying it into the pickle
(out-of-band buffers, PEP 574). Those bytes are copied once into a block of
shared memory that this end owns (``multiprocessing.shared_memory``), and
only the small pickle, the block's name and where each array lies in it go
through the pipe. The other end copies the arrays out of the block into its
own memory (so a later message cannot change them) and unpickles.
``benchmarks/bench_processes.py`` times a step both ways.

A block is reused from message to message, but must not be written while
the other end may still have to read the last message in it. An answer
from the other end shows that it has read everything sent before (the ends
take turns: a request, then its answer, as in ``data_parallel``), so a
block is written again only after one; a message sent before that
(``data_parallel`` sends the model and then the first step, with no answer
between) goes into a fresh block, and the blocks it replaced are removed
when the answer comes. A message larger than the block gets a new, larger
one. Each end owns the blocks it writes and removes them on ``close`` (or,
if it is never closed, when it is garbage-collected or the interpreter
exits); the reading end only maps them. A block is named after the process that
made it, ``msn<pid>_<8 hex digits>`` (in ``/dev/shm`` on Linux), so one left behind can
be told apart from other programs' and traced to its process.

For processes started by ``spawn`` (or ``forkserver``), as ``data_parallel``
starts them: they share their parent's resource tracker, the process that
removes shared memory left behind when all of them have exited. A forked
child starts a tracker of its own, which would remove the parent's blocks
when the child exits.
"""
import os
import pickle
import secrets
import weakref
from multiprocessing.shared_memory import SharedMemory

import numpy as np

__all__ = ["ArrayPipe"]

ALIGN = 64              # each array starts on a cache line: the copies in and out run a little faster


def _aligned(nbytes):
    return -(-nbytes // ALIGN) * ALIGN


def _new_block(nbytes):
    """A new shared-memory block of ``nbytes``, named ``msn<pid>_<8 random hex digits>``."""
    while True:
        try:
            return SharedMemory(create=True, size=nbytes, name=f"msn{os.getpid()}_{secrets.token_hex(4)}")
        except FileExistsError:         # the name is taken (one chance in 4 billion): draw another
            continue


class ArrayPipe:
    """``send(message)`` and ``recv()`` of one end of a ``multiprocessing`` connection, the
    message's arrays through shared memory.

    Both ends of the connection must be wrapped, with the same ``shared_memory`` (False:
    every message goes through the pipe, as it would without this class: the benchmark
    measures what shared memory buys). The ends must take turns, each message after the
    first answered before the next is sent, except that a second message may follow the
    first before any answer (see the module docstring).
    """

    def __init__(self, connection, shared_memory=True):
        self.connection, self.shared_memory = connection, shared_memory
        self.owned = []             # the blocks this end has written and not removed; the last is in use
        self.unanswered = False     # a message has gone into it since the other end last answered
        self.theirs = None          # the other end's block this end last read from (mapped)
        # blocks of an end that is never closed are removed when it is collected or at exit
        self._remove_owned = weakref.finalize(self, _remove_all, self.owned)

    @property
    def block(self):
        """The block this end writes its next message into (None before the first)."""
        return self.owned[-1] if self.owned else None

    def send(self, message):
        if not self.shared_memory:
            self.connection.send(message)
            return
        buffers = []
        # the standard pickler (multiprocessing's own adds ways to send connections and
        # sockets, which data_parallel's messages never hold, and cannot take the callback)
        pickled = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        views = [buffer.raw() for buffer in buffers]        # each array's bytes, not copied
        spans, offset = [], 0
        for view in views:
            spans.append((offset, view.nbytes))
            offset += _aligned(view.nbytes)
        name = None
        if views:
            block = self._block_of(offset)
            for (start, nbytes), view in zip(spans, views):
                block.buf[start:start + nbytes] = view
            name = block.name
            self.unanswered = True
        self.connection.send((pickled, name, spans))

    def recv(self):
        if not self.shared_memory:
            return self.connection.recv()
        pickled, name, spans = self.connection.recv()
        self.unanswered = False                             # it has read all we sent
        _remove_all(self.owned, keep_last=True)             # so the blocks we replaced can go
        arrays = []
        if name is not None:
            memory = self._mapped(name).buf
            arrays = [np.frombuffer(memory, np.uint8, nbytes, start).copy() for start, nbytes in spans]
        return pickle.loads(pickled, buffers=arrays)

    def _block_of(self, nbytes):
        """This end's block for a message of ``nbytes``: a new one (twice as large, at least)
        when they do not fit, or when the other end may not have read the last message yet."""
        if self.block is None or self.block.size < nbytes or self.unanswered:
            old = 0 if self.block is None else self.block.size
            self.owned.append(_new_block(max(nbytes, 2 * old if nbytes > old else old, 2**16)))
        return self.block

    def _mapped(self, name):
        """The other end's block ``name``, mapped once; a block it has replaced is unmapped."""
        if self.theirs is None or self.theirs.name != name:
            if self.theirs is not None:
                self.theirs.close()
            # (Python < 3.13 also registers a block it only maps with the resource tracker;
            # a spawned process shares its parent's, which keeps a set of names, so the
            # writer's unlink unregisters the name for both: nothing is left to undo)
            self.theirs = SharedMemory(name=name)
        return self.theirs

    def close(self, remove_mapped=False):
        """Remove this end's blocks and unmap the other's (``remove_mapped``: remove those
        too, for an other end that has stopped without removing its own), then close the
        connection."""
        self._remove_owned()
        if self.theirs is not None:
            self.theirs.close()
            if remove_mapped:
                _unlink(self.theirs)
            self.theirs = None
        self.connection.close()


def _remove_all(blocks, keep_last=False):
    """Unmap and remove the blocks in the list ``blocks`` (all but the last with ``keep_last``),
    taking each off the list first: an interruption leaves none there that is gone."""
    while len(blocks) > (1 if keep_last else 0):
        block = blocks.pop(0)
        block.close()
        _unlink(block)


def _unlink(block):
    """Remove a block's name (its memory goes once no process maps it); one already removed,
    e.g. by the other end's ``close(remove_mapped=True)``, is no error."""
    try:
        block.unlink()
    except FileNotFoundError:
        pass
