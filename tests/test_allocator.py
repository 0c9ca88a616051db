"""allocator.keep_freed_memory: freed memory stays in the process, so the same arrays
allocated again fault no fresh pages in (glibc); with the lever off it changes nothing.
Each case runs in a fresh interpreter: the setting is process-wide and stays."""
import subprocess
import sys

import pytest

from minisegnet import allocator
from types import SimpleNamespace

PATTERN = """
import resource, sys
import numpy as np
from minisegnet import allocator
allocator.KEEP_FREED = {keep}
print(allocator.keep_freed_memory())
def step():                       # ten 2 MiB arrays alive at once, then all freed: like a step
    arrays = [np.ones(1 << 19, np.float32) for _ in range(10)]
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults_per_step(keep):
    out = subprocess.run([sys.executable, "-c", PATTERN.format(keep=keep)], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", float(out[1])


@pytest.mark.skipif(allocator._glibc() is None, reason="mallopt is glibc's")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    kept, faults = _faults_per_step(True)
    assert kept and faults < 50
    # the C library's defaults give the 20 MiB back and fault it in again every step
    # (5120 pages of 4 KiB): this is what the lever removes, and what the test would miss
    kept, faults = _faults_per_step(False)
    assert not kept and faults > 1000


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_a_refused_threshold_is_reported_as_not_kept(monkeypatch):
    # guards keep_freed_memory's answer: True only when mallopt accepted both thresholds
    calls = []

    def mallopt(param, value):
        calls.append((param, value))
        return 0 if param == allocator._M_TRIM_THRESHOLD else 1      # glibc refuses the trim threshold

    monkeypatch.setattr(allocator, "kept", allocator.kept)           # restored after the test
    monkeypatch.setattr(allocator, "_glibc", lambda: SimpleNamespace(mallopt=mallopt))
    assert allocator.keep_freed_memory() is False
    assert allocator.kept is False
    assert (allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD) in calls
