"""Small timing helpers shared by the benchmarks: ours vs PyTorch, side by side.

* ``compare(ours, theirs, repeats, warmup)`` times two zero-argument callables
  *interleaved* (ours, theirs, ours, theirs, ...), so a burst of load from
  other processes hits both alike, and returns the medians and their ratio.
  Medians, not means: one preempted run should not move the figure.
* ``peak_rss_mib()`` is the peak resident memory of this process so far;
  ``python_peak_rss_mib(code)`` runs a Python snippet in a fresh interpreter
  and returns that process's peak, so one measurement cannot inherit the
  high-water mark of another.
* ``markdown_table(header, rows)`` formats results for docs/benchmarks.md.

Nothing here knows about convolutions; a training-step benchmark uses the
same calls with different callables.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

__all__ = ["time_once", "compare", "peak_rss_mib", "python_peak_rss_mib", "markdown_table", "machine_summary"]


def time_once(fn, clock=time.perf_counter):
    """Seconds taken by one call of ``fn()``; ``clock`` is wall time (``perf_counter``)
    by default, or e.g. ``time.process_time`` for this process's CPU time."""
    start = clock()
    fn()
    return clock() - start


def compare(ours, theirs, repeats=15, warmup=2, clock=time.perf_counter):
    """Time ``ours()`` and ``theirs()`` alternately; return a dict of medians.

    Keys: ``ours`` and ``theirs`` (median seconds), ``ratio`` (ours / theirs),
    ``ours_all`` and ``theirs_all`` (every sample), and ``spread`` (the
    interquartile range of the per-pair ratios divided by their median, a
    rough noise gauge: 0.05 means the pairs agree within about 5%).
    ``warmup`` untimed pairs run first (caches, lazy allocations, JIT-ed
    kernels in the other library). ``clock=time.process_time`` measures CPU
    time instead of wall time: on a machine shared with other jobs, and with
    both libraries held to one thread, it counts the work done rather than
    the time the scheduler happened to give.
    """
    for _ in range(warmup):
        ours()
        theirs()
    a, b = [], []
    for _ in range(repeats):
        a.append(time_once(ours, clock))
        b.append(time_once(theirs, clock))
    ratios = sorted(x / y for x, y in zip(a, b))
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    med_a, med_b = statistics.median(a), statistics.median(b)
    return {"ours": med_a, "theirs": med_b, "ratio": med_a / med_b, "ours_all": a, "theirs_all": b,
            "spread": (q3 - q1) / statistics.median(ratios)}


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_HWM_REPORT = """
def _report_peak_rss():
    # VmHWM: the peak resident size of this process image (Linux). Unlike
    # ru_maxrss it does not inherit the parent's size from before exec.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                print("\\n__PEAK_RSS_KB__", line.split()[1])
_report_peak_rss()
"""


def python_peak_rss_mib(code, env=None):
    """Run ``code`` in a fresh ``python -c`` and return ``(peak RSS in MiB, stdout)``.

    The child reports its own high-water mark (``VmHWM`` from
    ``/proc/self/status``), so the figure is the child's alone: on Linux the
    ``ru_maxrss`` of a child also counts the parent's size at fork, which
    would make a benchmark that imported torch report torch's memory.
    Raises ``RuntimeError`` with the child's stderr if it fails.
    """
    proc = subprocess.run([sys.executable, "-c", code + "\n" + _HWM_REPORT], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child python failed with code {proc.returncode}:\n{proc.stderr}")
    out, _, peak_kb = proc.stdout.rpartition("__PEAK_RSS_KB__")
    return int(peak_kb) / 1024, out.rstrip("\n")


def markdown_table(header, rows):
    """A Markdown table from a header list and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_summary():
    """One paragraph: CPU model and cores, NumPy and its BLAS, torch and its threads."""
    import platform

    import numpy as np

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = "unknown BLAS"
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        pass
    text = (f"CPU: {model}, {os.cpu_count()} logical cores; Python {platform.python_version()}; "
            f"NumPy {np.__version__} with {blas}")
    try:
        import torch

        text += f"; torch {torch.__version__} with {torch.get_num_threads()} threads"
    except ImportError:
        text += "; torch not installed"
    return text
