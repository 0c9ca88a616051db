"""A pipe between two processes whose arrays travel through shared memory.

``multiprocessing``'s ``Connection.send`` pickles a message and writes the
bytes into an operating-system pipe (a socket on Linux), which holds a few
tens of kilobytes: a megabyte of weights goes through in many small writes,
each waiting for the other process to read the last. ``data_parallel.py``
sends every worker the weights and its slice of the batch each step and gets
the gradients and outputs back, about 1.6 MB a step for the default U-Net,
and on the 2-core machine of docs/benchmarks.md the round trip took about
7.6 ms, an eighth of the step.

Here a message is pickled with protocol 5, which hands every contiguous
array's memory to a callback instead of copying it into the pickle
(out-of-band buffers, PEP 574). Those bytes are copied once into a block of
shared memory that this end owns (``multiprocessing.shared_memory``), and
only the small pickle and where each array lies go through the pipe. The
other end copies the arrays out of the block into its own memory (so a later
message cannot change them) and unpickles. A block is reused from message
to message; a message larger than it gets a new, larger one, whose name the
header carries.

A block must not be written while the other end may still have to read the
last message in it. An answer from the other end shows that it has read
everything sent before (the ends take turns: a request, then its answer, as
in ``data_parallel``), so a block is written again only after one; a message
sent before that (``data_parallel`` sends the model and then the first
step, with no answer between) goes into a fresh block, and the blocks it
replaced are removed when the answer comes. Each end owns the blocks it
writes and removes them on ``close``; the reading end only maps them.
"""
import pickle
from multiprocessing import shared_memory

import numpy as np

__all__ = ["ArrayPipe"]

ALIGN = 64              # every array starts on a cache line


def _aligned(nbytes):
    return -(-nbytes // ALIGN) * ALIGN


class ArrayPipe:
    """``send(message)`` and ``recv()`` of one end of a ``multiprocessing`` connection, the
    message's arrays through shared memory. Both ends of the connection must be wrapped, with
    the same ``shared_memory`` (False: every message goes through the pipe as it would
    without this class, for the benchmark that measures what shared memory buys)."""

    def __init__(self, connection, shared_memory=True):
        self.connection, self.shared_memory = connection, shared_memory
        self.block = None           # the shared memory this end writes its arrays into
        self.unanswered = False     # a message has gone into it since the other end last answered
        self.replaced = []          # earlier blocks, removed once the other end answers
        self.mapped = {}            # the other end's blocks this end has read from, by name

    def send(self, message):
        if not self.shared_memory:
            self.connection.send(message)
            return
        buffers = []
        header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
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
        self.connection.send((header, name, spans))

    def recv(self):
        if not self.shared_memory:
            return self.connection.recv()
        header, name, spans = self.connection.recv()
        self.unanswered = False                             # it has read all we sent
        for block in self.replaced:
            _remove(block)
        self.replaced = []
        buffers = []
        if name is not None:
            block = self._mapped(name).buf
            buffers = [np.frombuffer(block, np.uint8, nbytes, start).copy() for start, nbytes in spans]
        return pickle.loads(header, buffers=buffers)

    def _block_of(self, nbytes):
        """This end's block for a message of ``nbytes``: a new one (twice as large, at least)
        when they do not fit, or when the other end may not have read the last message yet."""
        if self.block is None or self.block.size < nbytes or self.unanswered:
            old = 0 if self.block is None else self.block.size
            size = max(nbytes, 2 * old if nbytes > old else old, 2**16)
            if self.block is not None:
                self.replaced.append(self.block)
            self.block = shared_memory.SharedMemory(create=True, size=size)
        return self.block

    def _mapped(self, name):
        """The other end's block ``name``, mapped once; a block it has replaced is unmapped."""
        if name not in self.mapped:
            for old in self.mapped.values():
                old.close()
            # (Python < 3.13 also registers a block it only maps with the resource tracker,
            # which a spawned process shares with its parent and which keeps a set of names:
            # the writer's unlink unregisters the name for both, so nothing is left to undo)
            self.mapped = {name: shared_memory.SharedMemory(name=name)}
        return self.mapped[name]

    def close(self, remove_mapped=False):
        """Remove this end's block and unmap the other's (``remove_mapped``: remove those
        too, when the other end has stopped without removing its own), then close the
        connection."""
        for block in self.replaced + ([self.block] if self.block is not None else []):
            _remove(block)
        self.block, self.replaced = None, []
        for block in self.mapped.values():
            block.close()
            if remove_mapped:
                try:
                    block.unlink()
                except FileNotFoundError:
                    pass
        self.mapped = {}
        self.connection.close()


def _remove(block):
    """Unmap a block this end owns and remove its name (the memory goes once no process maps it)."""
    block.close()
    block.unlink()
