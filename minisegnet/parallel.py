"""A small thread pool for the array work, and the BLAS threads beside it.

NumPy lets go of Python's global interpreter lock inside copies, ufuncs and
matrix products, so plain Python threads can keep several cores busy as long
as each one works on its own arrays. The convolution uses that: it cuts a
batch into pieces (a few images, or bands of output rows) and hands them to
``run``, which calls ``task(piece)`` for every piece, the pieces shared out
over ``get_num_threads()`` threads (the calling thread takes a share too),
and returns the results in piece order.

Three rules keep it correct and fast:

* **Nothing shared is written.** Each task writes only its own slice of the
  output, and scratch buffers are per thread (``functional/conv_fast.py``
  keys its cache by thread). A task must not call ``run`` itself: inside a
  task, ``run`` works through its pieces serially.
* **Never slower than one thread.** The threads claim the pieces one at a
  time, the calling thread included; a worker that wakes up late (on a busy
  machine) finds the pieces already taken.
* **One level of threads.** OpenBLAS, NumPy's usual BLAS, runs its own
  threads inside every matrix product. With our threads on top, two cores
  would serve four busy threads. Inside ``run`` each thread therefore asks
  OpenBLAS for a single thread (``openblas_set_num_threads_local``, found in
  the loaded library; without it, ``run`` works serially and leaves the
  BLAS alone, so nothing is oversubscribed), and restores the setting after.
* **The same numbers at any thread count.** How the work is cut is decided by
  the caller from the shapes and the memory limit, never from the thread
  count, and results are combined in piece order. So one thread and four give
  bitwise identical results (a test checks it).

``set_num_threads(1)`` (or ``MINISEGNET_NUM_THREADS=1``) turns the pool off:
one thread does all the work, products included. Only NumPy work goes
through the pool; CuPy runs on the GPU.
"""
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["set_num_threads", "get_num_threads", "run", "pieces", "over_batch", "blas_threads_controllable",
           "SPLIT", "MIN_PIECE_BYTES"]

# A batch is cut into at least SPLIT pieces when it is big enough, whatever the thread
# count (so the numbers never depend on it) ...
SPLIT = max(2, os.cpu_count() or 1)
# ... but no piece smaller than MIN_PIECE_BYTES: below it, handing a piece to another
# thread costs more than it saves.
MIN_PIECE_BYTES = 512 * 1024


def _default_threads():
    """``MINISEGNET_NUM_THREADS`` if set, else the CPUs this process may use."""
    text = os.environ.get("MINISEGNET_NUM_THREADS")
    if text is not None:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"MINISEGNET_NUM_THREADS must be a positive integer, got {text!r}") from None
        if value < 1:
            raise ValueError(f"MINISEGNET_NUM_THREADS must be a positive integer, got {text!r}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()
_pool = None                    # a ThreadPoolExecutor with _num_threads - 1 workers, made on first use
_pool_lock = threading.Lock()
_in_worker = threading.local()  # .active is True inside a task run by ``run``


def set_num_threads(n):
    """Use ``n`` threads for the array work (1: no pool); returns the previous number.

    Like ``torch.set_num_threads``. The default is the number of CPUs this
    process may use, or ``MINISEGNET_NUM_THREADS``.
    """
    global _num_threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    with _pool_lock:
        previous, _num_threads = _num_threads, n
        if _pool is not None and n != previous:
            _pool.shutdown(wait=True)
            _pool = None
    return previous


def get_num_threads():
    """How many threads ``run`` shares the pieces over."""
    return _num_threads


# ---- BLAS threads --------------------------------------------------------------------
def _find_blas_thread_setters():
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded into this process.

    The function (OpenBLAS 0.3.27 and later) sets the BLAS thread count for
    the calling thread only, which is what each of our threads needs. The
    libraries are found by name in ``/proc/self/maps`` (Linux); elsewhere, or
    with another BLAS, the list is empty.
    """
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded before looking)

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return []
    setters = []
    for path in paths:
        try:
            setter = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
        setters.append(setter)
    return setters


_blas_setters = None


def blas_threads_controllable():
    """True when each thread can ask OpenBLAS for one thread (so the pool may run GEMMs)."""
    global _blas_setters
    if _blas_setters is None:
        _blas_setters = _find_blas_thread_setters()
    return bool(_blas_setters)


def _set_blas_threads(n):
    """Set this thread's OpenBLAS thread count to ``n``; return the previous counts."""
    if len(_blas_setters) == 1:       # the usual case, NumPy's OpenBLAS alone: one call
        return _blas_setters[0](n)
    return [setter(n) for setter in _blas_setters]


def _restore_blas_threads(previous):
    if len(_blas_setters) == 1:
        _blas_setters[0](previous)
        return
    for setter, n in zip(_blas_setters, previous):
        setter(n)


# ---- the pool ------------------------------------------------------------------------
def _worker_start():
    _set_blas_threads(1)


def _get_pool():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_num_threads - 1, thread_name_prefix="minisegnet",
                                       initializer=_worker_start)
        return _pool


def _forget_pool_after_fork():
    # a forked child has none of the parent's threads: start a fresh pool if it needs one
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


class _Job:
    """One call of ``run``: its pieces, claimed one at a time by whichever thread is free.

    A thread *claims* the next unclaimed piece (under a lock, so no piece is
    claimed twice), runs it, and claims again until none is left. The
    calling thread works too, so if a worker is slow to wake up (the machine
    is busy) the caller simply takes its pieces: never slower than working
    alone. ``wait`` returns once no claimed piece is still running.
    """

    def __init__(self, task, pieces):
        self.task, self.pieces = task, pieces
        self.results = [None] * len(pieces)
        self.next = self.running = 0
        self.error = None
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)

    def _claim(self):
        with self.lock:
            if self.next == len(self.pieces) or self.error is not None:
                return None
            self.next += 1
            self.running += 1
            return self.next - 1

    def _release(self, error):
        with self.lock:
            self.running -= 1
            if error is not None and self.error is None:
                self.error = error
            if self.running == 0:
                self.idle.notify_all()

    def work(self):
        """Run pieces until none is left (in any thread)."""
        _in_worker.active = True
        try:
            while (k := self._claim()) is not None:
                error = None
                try:
                    self.results[k] = self.task(self.pieces[k])
                except BaseException as exc:    # handed to the caller by ``run``
                    error = exc
                self._release(error)
        finally:
            _in_worker.active = False

    def wait(self):
        with self.lock:
            while self.running:
                self.idle.wait()


def run(task, pieces):
    """``[task(p) for p in pieces]``, the pieces shared out over the threads.

    The calling thread and up to ``get_num_threads() - 1`` workers claim the
    pieces one at a time (``_Job``); results come back in piece order. Each
    task must write only what belongs to its piece. Every task runs with
    OpenBLAS held to one thread, also with ``set_num_threads(1)`` (then the
    calling thread works through all the pieces), so the products and their
    rounding are the same at any thread count. The first exception reaches
    the caller once no piece is running any more. Inside a task, or when
    OpenBLAS's threads cannot be set per thread, the pieces run serially in
    the calling thread as they are.
    """
    if getattr(_in_worker, "active", False) or not blas_threads_controllable():
        return [task(piece) for piece in pieces]
    job = _Job(task, pieces)
    helpers = min(_num_threads, len(pieces)) - 1
    if helpers > 0:
        pool = _get_pool()
        for _ in range(helpers):
            pool.submit(job.work)
    previous = _set_blas_threads(1)
    try:
        job.work()
    finally:
        _restore_blas_threads(previous)
        job.wait()
    if job.error is not None:
        raise job.error
    return job.results


# ---- cutting a batch -------------------------------------------------------------------
def pieces(n_items, item_bytes, max_bytes=None):
    """``(start, stop)`` runs of a batch of ``n_items`` items of ``item_bytes`` each.

    At least ``SPLIT`` runs as long as each keeps ``MIN_PIECE_BYTES``, and, if
    ``max_bytes`` is given, at most that many bytes a run (but at least one
    item). The runs depend only on these numbers, never on the thread count.
    """
    share = max(-(-n_items // SPLIT), -(-MIN_PIECE_BYTES // max(1, item_bytes)))
    step = share if max_bytes is None else min(share, max_bytes // max(1, item_bytes))
    step = max(1, step)
    return [(n0, min(n0 + step, n_items)) for n0 in range(0, n_items, step)]


def over_batch(part, x):
    """Call ``part(index)`` for slabs of images of ``x`` (along its first axis), over the threads.

    ``part`` reads and writes only its slab (``a[index]`` of preallocated
    arrays). A small array, a CuPy array or an array without a batch axis is
    one call with ``index = Ellipsis`` (the whole array).
    """
    import numpy as np

    if x.ndim == 0 or type(x) is not np.ndarray or x.nbytes < 2 * MIN_PIECE_BYTES:
        part(Ellipsis)
        return
    runs = pieces(x.shape[0], x.nbytes // x.shape[0])
    run(lambda r: part(slice(r[0], r[1])), runs)
