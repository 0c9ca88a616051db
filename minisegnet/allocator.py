"""Keeping freed memory for the next training step: glibc malloc's two thresholds.

A training step allocates and frees the same arrays every time: the
activations, the gradients, the temporaries of every elementwise operation,
megabytes in all. NumPy takes that memory from the C library's ``malloc``,
and glibc's ``malloc`` (Linux) hands memory back to the kernel in two ways
by default:

* an allocation above the *mmap threshold* gets pages of its own from the
  kernel (``mmap``), returned when it is freed;
* free memory at the top of the heap above the *trim threshold* is returned
  (``trim``).

(glibc raises the mmap threshold, and the trim threshold with it, to the
size of the largest such block freed, up to 32 MiB, so a program that keeps
allocating the same sizes settles; a step's mix of sizes does not.) Memory
returned this way comes back as fresh pages: the next step's arrays touch
them, and the kernel stops the program at each 4 KiB page to map it and fill
it with zeros (a *page fault*): thousands of them a training step, and
milliseconds of kernel time (``docs/benchmarks.md`` records the counts and
times beside the step's lever table).

``keep_freed_memory`` sets both thresholds (``mallopt``) so that arrays of up
to 32 MiB come from the heap and up to 64 MiB of free heap stay in the
process: the next step reuses the same pages (a few dozen page faults a
step, or none). The price: memory a step has freed stays in the process
(up to 64 MiB of it at the heap's top, and any freed block below the top,
which the heap never gives back anyway), ready for the next step; the peak
is the step's own (the step benchmark's peak-RSS table is measured with it
on). The trainer calls it (``train.run``), in this process and in each
data-parallel worker; it changes the whole process, so a library function
never calls it by itself. Elsewhere than glibc (macOS, musl) it does
nothing.

``KEEP_FREED`` is its lever (``False``: the C library's defaults); the
benchmarks time the step both ways.
"""
import ctypes

__all__ = ["keep_freed_memory", "kept", "KEEP_FREED", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

KEEP_FREED = True
"""Whether ``keep_freed_memory`` changes malloc's thresholds (``False``: it does nothing)."""

MMAP_THRESHOLD = 32 << 20      # arrays up to 32 MiB from the heap (glibc's own upper limit for it)
TRIM_THRESHOLD = 64 << 20      # up to 64 MiB of free heap kept

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3       # mallopt's parameter numbers (malloc.h)

kept = False
"""Whether ``keep_freed_memory`` has set the thresholds in this process (the benchmarks report it)."""


def _glibc():
    """The process's C library when it is glibc (which has ``mallopt``), else None."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):        # Windows has no "this process" library to open
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc


def keep_freed_memory():
    """Keep freed memory in this process for reuse (see the module docstring): ``True`` when
    both thresholds were set, ``False`` when ``KEEP_FREED`` is off or the C library is not
    glibc."""
    global kept
    if not KEEP_FREED:
        return False
    libc = _glibc()
    if libc is None:
        return False
    kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return kept
