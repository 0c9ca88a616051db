"""allocator.keep_freed_memory: freed memory stays in the process, so the same arrays
allocated again fault no fresh pages in (glibc); with the lever off it changes nothing.
Each case runs in a fresh interpreter: the setting is process-wide and stays."""
import subprocess
import sys

import pytest

from minisegnet import allocator

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
