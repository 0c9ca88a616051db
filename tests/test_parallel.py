"""parallel.py on its own: the thread pool's errors and nesting, and MINISEGNET_NUM_THREADS (cases from a mutation review, stop 38: each fails on a mutant that every test before let through; the levers' thread tests and OpenBLAS's count are in test_conv_levers.py)."""
import os
import threading
import time

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F
from minisegnet import parallel


@pytest.fixture
def pool_of_two():
    """Two threads for the array work (the pool runs serially where OpenBLAS's count cannot be set)."""
    if not parallel.blas_threads_controllable():
        pytest.skip("OpenBLAS's thread count cannot be set here: the pool runs serially")
    previous = parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(previous)


def test_minisegnet_num_threads_zero_is_refused(monkeypatch):
    # guards _default_threads's `value < 1` check: 0 threads must be an error, not a silent 0
    monkeypatch.setenv("MINISEGNET_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="MINISEGNET_NUM_THREADS must be a positive integer, got '0'"):
        parallel._default_threads()
    monkeypatch.setenv("MINISEGNET_NUM_THREADS", "3")
    assert parallel._default_threads() == 3


def test_no_piece_starts_after_a_piece_has_failed(pool_of_two):
    # guards _Job._claim's stop on error: once a piece fails, the threads claim no more pieces
    started = []

    def task(p):
        started.append(p)
        raise KeyError(f"piece {p}")

    with pytest.raises(KeyError):
        parallel.run(task, list(range(20)))
    assert len(started) <= 2               # at most one piece a thread, of 20


def test_the_first_error_reaches_the_caller(pool_of_two):
    # guards _Job._release keeping the first error, not the last
    barrier = threading.Barrier(2, timeout=10)

    def task(p):
        barrier.wait()                      # both pieces run at once
        if p == 0:
            raise KeyError("first")
        time.sleep(0.5)                     # (a head start far beyond any scheduling delay)
        raise ValueError("second")

    with pytest.raises(KeyError, match="first"):
        parallel.run(task, [0, 1])


def test_a_run_inside_run_besides_own_stays_in_the_calling_thread(pool_of_two):
    # guards run_beside marking ``own`` as a task: a run inside it is serial (one level of threads)
    pieces_done, seen = threading.Event(), []

    def own():
        pieces_done.wait(10)                # the worker is idle again: it could take pieces
        seen.extend(parallel.run(lambda p: (time.sleep(0.01), threading.get_ident())[1], list(range(10))))

    parallel.run_beside(own, lambda p: pieces_done.set(), [0])
    assert seen == [threading.get_ident()] * 10


def test_the_default_thread_count_is_the_cpus_this_process_may_use(monkeypatch):
    # docs/performance.md: "the default is the number of CPUs the process may use" (not the machine's)
    monkeypatch.delenv("MINISEGNET_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert parallel._default_threads() == 3


def test_a_run_survives_another_thread_changing_the_thread_count(pool_of_two, monkeypatch):
    """``run`` takes the pool (``_get_pool``) and then submits to it, outside ``_pool_lock``; a
    ``set_num_threads`` from another thread in between shuts that pool down, and the submit
    raised ``RuntimeError: cannot schedule new futures after shutdown`` (seen without the
    monkeypatch too: one thread looping over ``run``, another toggling the count, with
    ``sys.setswitchinterval(1e-6)``: 4 errors in 6 s). This makes the interleaving certain."""
    real_get_pool = parallel._get_pool
    other = threading.Thread(target=parallel.set_num_threads, args=(3,))

    def get_pool_then_another_thread_changes_the_count():
        pool = real_get_pool()
        other.start()
        other.join(timeout=2)       # a fix may make it wait for this run (a lock): then it changes the count after
        return pool

    monkeypatch.setattr(parallel, "_get_pool", get_pool_then_another_thread_changes_the_count)
    try:
        assert parallel.run(lambda p: p * 10, [0, 1, 2, 3]) == [0, 10, 20, 30]
    finally:
        if other.is_alive() or other.ident is not None:
            other.join(timeout=10)


def test_no_piece_runs_after_run_beside_raises_owns_error(pool_of_two):
    """``run_beside``: "all of it has finished when run_beside returns". When ``own`` raises, the
    caller skipped ``job.work()``, and ``job.wait()`` returned as soon as no piece was running at
    that instant (before the worker started, or between two of its pieces); the worker then went
    on claiming pieces after the exception had reached the caller, with OpenBLAS's threads
    already given back (50 runs of 50 here)."""
    parallel.run(lambda p: p, [0, 1])                # the pool's worker exists
    for _ in range(5):
        returned, late = threading.Event(), []

        def task(p):
            if returned.is_set():
                late.append(p)
            time.sleep(0.002)
            if returned.is_set():
                late.append(p)

        def own():
            raise KeyError("own")

        with pytest.raises(KeyError, match="own"):
            parallel.run_beside(own, task, list(range(20)))
        returned.set()
        time.sleep(0.1)
        assert late == [], f"pieces {sorted(set(late))} ran after run_beside had raised"


def test_over_batch_of_an_empty_batch_without_a_minimum_piece_size(monkeypatch):
    """``over_batch`` cuts ``x`` by ``x.nbytes // x.shape[0]``: with an empty batch and
    ``MIN_PIECE_BYTES = 0`` (the setting test_conv_levers.small_pieces uses to reach every
    route) that is ``0 // 0``, a ZeroDivisionError from max pooling an empty batch."""
    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 0)
    x = msn.tensor(np.zeros((0, 2, 4, 4)), requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.shape == (0, 2, 2, 2)
    y.sum().backward()
    assert x.grad.shape == (0, 2, 4, 4)
    assert F.relu(x).shape == (0, 2, 4, 4)


def test_a_run_survives_another_thread_setting_one_thread(pool_of_two, monkeypatch):
    """``run`` decides to hand pieces to helpers from ``_num_threads`` and then takes the pool
    (``_get_pool``), which it makes with ``_num_threads - 1`` workers when there is none. A
    ``set_num_threads(1)`` from another thread in between drops the pool, and ``run`` then made
    ``ThreadPoolExecutor(max_workers=0)``: ``ValueError: max_workers must be greater than 0``
    (seen without the monkeypatch: one thread looping over ``run``, another toggling the count
    between 1 and 2, ``sys.setswitchinterval(1e-6)``: 3 errors in 5 s). The lock ``_get_pool``
    takes first lets the other thread in at that moment, deterministically."""
    real_lock = parallel._pool_lock
    armed = [True]
    other = threading.Thread(target=parallel.set_num_threads, args=(1,))

    class LockThatLetsAnotherThreadInFirst:
        def __enter__(self):
            if armed[0] and threading.current_thread() is threading.main_thread():
                armed[0] = False
                other.start()
                other.join(timeout=2)      # a fix may hold the count for this run: then it changes after
            return real_lock.__enter__()

        def __exit__(self, *exc):
            return real_lock.__exit__(*exc)

    monkeypatch.setattr(parallel, "_pool_lock", LockThatLetsAnotherThreadInFirst())
    try:
        assert parallel.run(lambda p: p * 10, [0, 1, 2, 3]) == [0, 10, 20, 30]
    finally:
        if other.ident is not None:
            other.join(timeout=10)
        monkeypatch.setattr(parallel, "_pool_lock", real_lock)
