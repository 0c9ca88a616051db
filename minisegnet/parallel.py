"""A small thread pool for the array work, and the BLAS threads beside it.

NumPy lets go of Python's global interpreter lock inside the loops of
copies, ufuncs, gathers and matrix products, so plain Python threads can
keep several cores busy as long as each one works on its own arrays. The
convolution uses that: it cuts a batch into pieces (a few images, or bands
of output rows) and hands them to ``run``, which calls ``task(piece)`` for
every piece, the pieces shared out over ``get_num_threads()`` threads (the
calling thread takes a share too), and returns the results in piece order.

Five rules keep it correct and fast:

* **Nothing shared is written.** Each task writes only its own slice of the
  output, and scratch buffers are per thread (``functional/conv_fast.py``
  keys its cache by thread). A task must not call ``run`` itself: inside a
  task, ``run`` works through its pieces serially.
* **Pieces big enough to share.** The threads overlap only inside NumPy's
  loops; everything between two operations needs the interpreter lock,
  which the threads then hand back and forth (docs/performance.md, "Using
  both cores"). Short copies and elementwise operations (a few thousand
  elements) run slower on two threads than on one
  (``benchmarks/bench_threads.py`` measures it by kind and size), so callers
  cut work into pieces of at least ``MIN_PIECE_BYTES``; that is necessary,
  not enough: the operations inside a piece can still be short (a 3x3
  im2col copies a ninth of its piece at a time).
* **Late workers hold nobody up.** The threads claim the pieces one at a
  time, the calling thread included, so a worker that wakes up late (on a
  busy machine) finds them already taken.
* **One level of threads.** OpenBLAS, NumPy's usual BLAS, runs its own
  threads inside every matrix product, and its threads spin while they wait
  for work. With our threads on top, two cores would serve four busy
  threads. While ``run`` works, OpenBLAS is therefore held to one thread
  (``openblas_set_num_threads``, found in the loaded library; without it,
  ``run`` works serially and leaves the BLAS alone, so nothing is
  oversubscribed), and its thread count is restored after. Matrix products
  that other threads of the program compute meanwhile run single-threaded.
* **The same numbers at any thread count.** How the work is cut is decided by
  the caller from the shapes and the memory limit, never from the thread
  count, and results are combined in piece order. So one thread and four give
  bitwise identical results (a test checks it).

``set_num_threads(1)`` (or ``MINISEGNET_NUM_THREADS=1``) turns the pool off:
one thread does all the work, products included. Only NumPy work goes
through the pool; CuPy runs on the GPU.
"""
import contextlib
import ctypes
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["set_num_threads", "get_num_threads", "one_thread", "run", "run_beside", "pieces", "over_batch", "blas_threads_controllable", "find_openblas",
           "SPLIT", "MIN_PIECE_BYTES"]

# A batch is cut into at least SPLIT pieces when it is big enough, whatever the thread
# count (so the numbers never depend on it) ...
SPLIT = max(2, os.cpu_count() or 1)
# ... but no piece smaller than MIN_PIECE_BYTES: below it, handing a piece to another
# thread costs more than it saves.
MIN_PIECE_BYTES = 512 * 1024
# ... and a number of pieces that SPLIT divides, where the items allow (a lever: False cuts
# runs of equal length and leaves the last one short).
EVEN_RUNS = True


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
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an integer (a number of threads), got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    n = int(n)
    with _pool_lock:
        previous, _num_threads = _num_threads, n
        if _pool is not None and n != previous:
            _pool.shutdown(wait=True)
            _pool = None
    return previous


def get_num_threads():
    """How many threads ``run`` shares the pieces over."""
    return _num_threads


@contextlib.contextmanager
def one_thread():
    """The block runs on one thread: the pool off (``set_num_threads(1)``) and OpenBLAS
    held to one thread where it can be set; both restored after. For work shared by
    processes instead of threads (``data_parallel.py``): each process takes one core."""
    previous = set_num_threads(1)
    try:
        hold = blas_threads_controllable()
        if hold:
            _hold_blas_to_one_thread()
        try:
            yield
        finally:
            if hold:
                _release_blas()
    finally:
        set_num_threads(previous)


# ---- BLAS threads --------------------------------------------------------------------
def find_openblas():
    """``(get, set)`` pairs of ``openblas_get_num_threads``/``openblas_set_num_threads`` of
    every OpenBLAS loaded into this process (NumPy's wheels prefix the names).

    The libraries are found by name in ``/proc/self/maps`` (Linux); elsewhere,
    or with another BLAS, the list is empty.
    """
    import numpy  # noqa: F401  (make sure NumPy's BLAS is loaded before looking)

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("openblas_", ""), ("scipy_openblas_", "64_"), ("openblas_", "64_")):
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                found.append((get, set_))
                break
    return found


_openblas = None
_blas_lock = threading.Lock()
_blas_users = 0           # jobs running now; the first one in holds OpenBLAS to one thread
_blas_saved = []          # OpenBLAS's thread counts from before, restored by the last one out


def blas_threads_controllable():
    """True when OpenBLAS's thread count can be set (so the pool may run GEMMs)."""
    global _openblas
    if _openblas is None:
        _openblas = find_openblas()
    return bool(_openblas)


def _hold_blas_to_one_thread():
    """OpenBLAS to one thread while any job runs. (Its per-thread setting turned out to
    change the process-wide count in the OpenBLAS NumPy ships, so the count is set
    process-wide, once, by the first job in, and restored by the last one out.)"""
    global _blas_users, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = [get() for get, _ in _openblas]
            for _, set_ in _openblas:
                set_(1)
        _blas_users += 1


def _release_blas():
    global _blas_users
    with _blas_lock:
        _blas_users -= 1
        if _blas_users == 0:
            for (_, set_), n in zip(_openblas, _blas_saved):
                set_(n)


# ---- the pool ------------------------------------------------------------------------
def _get_pool():
    global _pool
    with _pool_lock:
        if _pool is None:
            # (at least one: another thread's set_num_threads(1) may come between a caller's
            # count of helpers and this line)
            _pool = ThreadPoolExecutor(max_workers=max(1, _num_threads - 1), thread_name_prefix="minisegnet")
        return _pool


def _hand_out(job, workers):
    """Let ``workers`` pool threads join ``job``. Another thread's ``set_num_threads`` may
    shut the pool down between ``_get_pool`` and a submit (the pool then refuses it): the
    workers not handed out are simply missing, and the calling thread, which works through
    the job's pieces too, does their share."""
    pool = _get_pool()
    for _ in range(workers):
        try:
            pool.submit(job.work)
        except RuntimeError:            # "cannot schedule new futures after shutdown"
            return


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
    is busy) the caller simply takes its pieces instead of waiting for it.
    ``wait`` returns once no claimed piece is still running.
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

    def stop(self, error):
        """No piece is claimed any more (the caller has ``error`` to raise)."""
        with self.lock:
            if self.error is None:
                self.error = error

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
    if len(pieces) == 1 or _num_threads == 1:       # one thread's work: no hand-offs to arrange
        _hold_blas_to_one_thread()
        _in_worker.active = True
        try:
            return [task(piece) for piece in pieces]
        finally:
            _in_worker.active = False
            _release_blas()
    job = _Job(task, pieces)
    _hold_blas_to_one_thread()
    try:
        helpers = min(_num_threads, len(pieces)) - 1
        if helpers > 0:
            _hand_out(job, helpers)
        try:
            job.work()
        finally:
            job.wait()                  # no piece runs any more ...
    finally:
        _release_blas()                 # ... before OpenBLAS gets its threads back
    if job.error is not None:
        raise job.error
    return job.results


def run_beside(own, task, pieces):
    """``own()`` in the calling thread while the workers share ``[task(p) for p in pieces]``.

    For work that keeps the interpreter lock (``own``; NumPy's ``add.at`` is
    such work) beside work that mostly lets go of it (``task``): the two
    overlap instead of taking turns. The workers claim the pieces as in
    ``run``; the calling thread joins them once ``own`` returns, and all of it
    has finished when ``run_beside`` returns. ``own`` and the tasks must write
    different arrays. With one thread, inside a task, or when OpenBLAS's
    threads cannot be set, ``own()`` runs first and then the pieces.
    """
    if getattr(_in_worker, "active", False) or not blas_threads_controllable() or _num_threads == 1:
        own()
        run(task, pieces)
        return
    job = _Job(task, pieces)
    _hold_blas_to_one_thread()
    try:
        _hand_out(job, min(_num_threads - 1, len(pieces)))
        try:
            _in_worker.active = True            # ``own`` runs as a task would: a ``run`` inside it is serial
            try:
                own()
            except BaseException as error:      # the workers claim no more pieces: the caller has its error
                job.stop(error)
                raise
            finally:
                _in_worker.active = False
            job.work()                          # then help with the pieces no worker has claimed yet
        finally:
            job.wait()
    finally:
        _release_blas()
    if job.error is not None:
        raise job.error


# ---- cutting a batch -------------------------------------------------------------------
def pieces(n_items, item_bytes, max_bytes=None, split=None):
    """``(start, stop)`` runs of a batch of ``n_items`` items of ``item_bytes`` each.

    At least ``split`` (default ``SPLIT``) runs as long as each keeps
    ``MIN_PIECE_BYTES``, and, if ``max_bytes`` is given, at most that many bytes
    a run (but at least one item); with ``EVEN_RUNS``, a multiple of ``split``
    runs where there are items enough. ``split=1`` cuts by ``max_bytes`` alone
    (work that no thread pool shares). The runs depend only on these numbers,
    never on the thread count.
    """
    split = SPLIT if split is None else split
    share = max(-(-n_items // split), -(-MIN_PIECE_BYTES // max(1, item_bytes)))
    step = share if max_bytes is None else min(share, max_bytes // max(1, item_bytes))
    step = max(1, step)
    count = -(-n_items // step)
    more = min(n_items, count + split - count % split)
    if EVEN_RUNS and count > split and count % split and (n_items // more) * item_bytes >= MIN_PIECE_BYTES:
        # 3 runs on 2 threads: one thread does two while the other waits for it. Cut the
        # batch into the next multiple of SPLIT runs instead, as even as the items allow.
        count = more
        bounds = [i * n_items // count for i in range(count + 1)]
        return list(zip(bounds[:-1], bounds[1:]))
    return [(n0, min(n0 + step, n_items)) for n0 in range(0, n_items, step)]


def over_batch(part, x):
    """Call ``part(index)`` for slabs of images of ``x`` (along its first axis), over the threads.

    ``part`` reads and writes only its slab (``a[index]`` of preallocated
    arrays). A small array, a CuPy array or an array without a batch axis is
    one call with ``index = Ellipsis`` (the whole array).
    """
    import numpy as np

    if x.ndim == 0 or type(x) is not np.ndarray or x.nbytes < 2 * MIN_PIECE_BYTES or x.shape[0] == 0:
        part(Ellipsis)
        return
    runs = pieces(x.shape[0], x.nbytes // x.shape[0])
    run(lambda r: part(slice(r[0], r[1])), runs)
