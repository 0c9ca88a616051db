"""Shared helpers for the benchmarks: ours vs PyTorch, side by side, honestly.

Timing
  ``compare(ours, theirs, repeats, warmup, clock)`` times two zero-argument
  callables *interleaved* (ours, theirs, ours, theirs, ...), so a burst of
  load from other processes hits both alike, and returns the medians and
  their ratio. Medians, not means: one preempted run should not move the
  figure. ``clock=time.process_time`` counts this process's CPU time (all
  its threads), the steadier measure with one thread on a shared machine.
  Every timed call (``time_once``) starts after a *settle*: an untimed
  wait, ``SETTLE`` seconds busy and then on until no other thread of the
  process burns CPU. PyTorch's OpenMP threads keep spinning after a
  parallel call returns (about 10 ms of one core here at two threads), and
  OpenBLAS's after a multi-threaded GEMM (about 80 ms), so without it a
  call at two threads could start while the other library's spinning
  thread still held one of the two cores.

Threads
  ``threads(n)`` (a context manager) sets every thread count at once:
  PyTorch's, minisegnet's pool and NumPy's OpenBLAS (``set_blas_threads``).
  ``threads(None)`` restores each library's default. Two regimes are
  reported everywhere: one thread with CPU time, and the default threads
  with wall time.

The machine and its load
  ``machine_info()`` gathers the CPU model, its vector ISA (AVX2, AVX-512
  from ``/proc/cpuinfo``), NumPy's BLAS and its threads, PyTorch and its
  threads. ``LoadMonitor`` records the load average before and after a
  measurement and, from ``/proc/stat``, how much CPU *other* processes used
  meanwhile (and how much the hypervisor stole). ``verdict(...)`` turns that,
  and optionally PyTorch's own two-thread scaling, into "reliable" or a list
  of reasons it is not; ``report_header`` and ``markdown_table`` print the
  verdict with every result, so a table from a busy machine says so.

Memory
  ``peak_rss_mib()``: this process's peak; ``python_peak_rss_mib(code)``:
  the peak of a fresh interpreter running ``code`` (its own ``VmHWM``).
"""
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

__all__ = ["time_once", "settle", "SETTLE", "SETTLE_MOST", "compare", "threads", "set_blas_threads", "get_blas_threads", "machine_info",
           "LoadMonitor", "verdict", "torch_scaling", "report_header", "machine_summary", "result_line", "markdown_table", "peak_rss_mib",
           "python_peak_rss_mib", "BUSY_LOAD", "BUSY_OTHERS", "BUSY_STEAL"]

# A run is flagged unreliable when, before it, the 1-minute load average exceeded
# BUSY_LOAD, or when during it other processes used more than BUSY_OTHERS of the
# machine's CPU time, or the hypervisor stole more than BUSY_STEAL of it.
BUSY_LOAD = 0.5
BUSY_OTHERS = 0.10
BUSY_STEAL = 0.05

# The wait before each timed call (``settle``): SETTLE seconds of busy waiting (longer than the
# ~10 ms for which PyTorch's OpenMP worker spins after a parallel call at two threads, on the
# 2-core machine of docs/benchmarks.md), then on while another thread of the process still
# burns CPU (OpenBLAS's workers spin ~80 ms after a GEMM of their own), at most SETTLE_MOST.
SETTLE = 0.02
SETTLE_MOST = 0.5


# ---- timing -----------------------------------------------------------------------------
def settle(seconds=None, most=None):
    """Wait, untimed, until threads a previous call left spinning (PyTorch's OpenMP workers,
    about 10 ms; OpenBLAS's, about 80 ms) have stopped: busy-wait ``seconds`` (default
    ``SETTLE``), then sleep 5 ms at a time while another thread of this process still
    burns CPU (more than a fifth of the slice), at most ``most`` seconds in all (default
    ``SETTLE_MOST``), and busy-wait 2 ms more. The sleeps hand the core to the spinning
    thread (OpenBLAS's worker made no progress towards its timeout while this thread
    busy-waited); the busy parts keep the core from idling (a call that follows an idle
    spell runs slower: cold caches, a descheduled virtual CPU)."""
    deadline = time.perf_counter() + (SETTLE_MOST if most is None else most)
    _spin(SETTLE if seconds is None else seconds)
    slice_ = 0.005
    while time.perf_counter() < deadline:
        cpu = time.process_time()
        time.sleep(slice_)
        if time.process_time() - cpu < slice_ / 5:        # nothing else of ours burns CPU
            break
    _spin(0.002)


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def time_once(fn, clock=time.perf_counter):
    """Seconds taken by one call of ``fn()``, timed after a ``settle`` (untimed); ``clock`` is
    wall time (``perf_counter``) by default, or e.g. ``time.process_time`` for this
    process's CPU time."""
    settle()
    start = clock()
    fn()
    return clock() - start


def compare(ours, theirs, repeats=15, warmup=2, clock=time.perf_counter):
    """Time ``ours()`` and ``theirs()`` alternately; return a dict of medians.

    Keys: ``ours`` and ``theirs`` (median seconds), ``ratio`` (ours / theirs),
    ``ours_all`` and ``theirs_all`` (every sample), and ``spread`` (the
    interquartile range of the per-pair ratios divided by their median, a
    rough noise gauge: 0.05 means the pairs agree within about 5%).
    ``warmup`` untimed pairs run first (caches, lazy allocations).
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


# ---- thread counts -------------------------------------------------------------------------
def set_blas_threads(n):
    """Set OpenBLAS's thread count (every loaded copy) to ``n``; returns the previous count or None."""
    from minisegnet.parallel import find_openblas

    previous = get_blas_threads()
    for _, set_ in find_openblas():
        set_(int(n))
    return previous


def get_blas_threads():
    """NumPy's OpenBLAS thread count, or None when it cannot be read."""
    from minisegnet.parallel import find_openblas

    for get, _ in find_openblas():
        return int(get())
    return None


_DEFAULTS = {}


def _remember_defaults():
    if not _DEFAULTS:
        import torch

        import minisegnet

        _DEFAULTS.update(torch=torch.get_num_threads(), msn=minisegnet.parallel.get_num_threads(),
                         blas=get_blas_threads())
    return _DEFAULTS


@contextlib.contextmanager
def threads(n):
    """Run the block with ``n`` threads in PyTorch, minisegnet and OpenBLAS (None: their defaults)."""
    import torch

    import minisegnet

    defaults = _remember_defaults()
    before = (torch.get_num_threads(), minisegnet.parallel.get_num_threads(), get_blas_threads())
    torch.set_num_threads(n or defaults["torch"])
    minisegnet.parallel.set_num_threads(n or defaults["msn"])
    if defaults["blas"] is not None:
        set_blas_threads(n or defaults["blas"])
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        minisegnet.parallel.set_num_threads(before[1])
        if before[2] is not None:
            set_blas_threads(before[2])


@contextlib.contextmanager
def constants_set(module, **values):
    """A module's speed levers that are module constants (``pooling.MASKS_BY_BITS``,
    ``sampling.KEEP_READS``, ...) set to ``values`` for the block, then restored."""
    previous = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            setattr(module, name, value)


@contextlib.contextmanager
def _set_for_block(setter, value):
    """``setter(value)`` for the block, then ``setter(previous)``, for a setter that returns
    the value it replaced (as ``conv_fast.set_lever`` and ``set_im2col_limit`` do)."""
    previous = setter(value)
    try:
        yield
    finally:
        setter(previous)


def lever_set(name, on):
    """``functional/conv_fast.py``'s lever ``name`` switched to ``on`` for the block, then restored."""
    from minisegnet.functional import conv_fast

    return _set_for_block(lambda value: conv_fast.set_lever(name, value), on)


def im2col_limit_set(nbytes):
    """The current backend's im2col limit set to ``nbytes`` for the block, then restored."""
    from minisegnet.functional import conv_fast

    return _set_for_block(conv_fast.set_im2col_limit, nbytes)


# ---- the machine ------------------------------------------------------------------------------
def _cpuinfo():
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", "unknown CPU", platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")) and not flags:     # x86; ARM's "Features"
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def machine_info():
    """A dict describing the machine and the libraries (see ``report_header``)."""
    import numpy as np

    model, flags = _cpuinfo()
    isa = [name for name, flag in (("AVX-512", "avx512f"), ("AVX2", "avx2"), ("FMA", "fma"), ("AVX", "avx"),
                                   ("NEON", "asimd")) if flag in flags]
    blas = "unknown BLAS"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    info = dict(cpu=model, isa=" ".join(isa) or "unknown", logical_cores=os.cpu_count(), usable_cores=affinity,
                python=platform.python_version(), numpy=np.__version__, blas=blas,
                blas_threads=get_blas_threads())
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        info.update(torch="not installed", torch_threads=None)
    import minisegnet

    from minisegnet import allocator

    info.update(minisegnet_threads=minisegnet.parallel.get_num_threads(),
                openblas_num_threads_env=os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                freed_memory_kept=allocator.kept)
    return info


# ---- the load ---------------------------------------------------------------------------------
def _usable_cpus():
    """The CPUs this process may run on (a cpuset or ``taskset`` may hold it to a few of the
    host's), or None where the system does not say."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _cpu_jiffies():
    """(busy, steal) jiffies of the CPUs this process may use, from /proc/stat (its ``cpuN``
    lines; the whole machine's line where the usable CPUs are not known)."""
    cpus = _usable_cpus()
    wanted = {f"cpu{n}" for n in cpus} if cpus is not None else None
    busy = steal = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split() or [""]
            counted = name == "cpu" if wanted is None else name in wanted
            if not counted:
                continue
            fields = [int(v) for v in values]
            user, nice, system, idle, iowait, irq, softirq = fields[:7]
            busy += user + nice + system + irq + softirq
            steal += fields[7] if len(fields) > 7 else 0
    return busy, steal


def _load_average():
    """The 1-minute load average, or None where it cannot be read (no /proc/loadavg)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _self_jiffies():
    """utime + stime of this process (all threads) and of its finished children, in jiffies."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15])


class LoadMonitor:
    """Measure what else the machine did around a measurement.

    ``start()`` before, ``stop()`` after; ``stop`` returns a dict with
    ``load_before`` and ``load_after`` (1-minute load averages), ``others``
    (the share of the machine's CPU time used by other processes) and
    ``steal`` (the share the hypervisor gave to other guests). Without
    ``/proc`` (not Linux) the shares are None.
    """

    def start(self):
        self.load_before = _load_average()
        self.t0 = time.perf_counter()
        try:
            self.busy0, self.steal0 = _cpu_jiffies()
            self.self0 = _self_jiffies()
        except OSError:
            self.busy0 = None
        return self

    def stop(self):
        wall = time.perf_counter() - self.t0
        result = dict(load_before=self.load_before, load_after=_load_average(), seconds=wall,
                      others=None, steal=None)
        if self.busy0 is not None:
            busy, steal = _cpu_jiffies()
            cpus = _usable_cpus()
            capacity = wall * os.sysconf("SC_CLK_TCK") * (len(cpus) if cpus is not None else os.cpu_count() or 1)
            others = (busy - self.busy0) - (_self_jiffies() - self.self0)
            result.update(others=max(0.0, others / capacity), steal=(steal - self.steal0) / capacity)
        return result


def torch_scaling(step, n_threads=2, repeats=7):
    """Wall-time medians of PyTorch's ``step`` at one thread and at ``n_threads``, interleaved.

    On a quiet machine two threads are faster; when they are not, something
    else was using the second core. Returns ``(one, many)`` in seconds.
    """
    import torch

    previous = torch.get_num_threads()
    one, many = [], []
    try:
        for _ in range(repeats):
            torch.set_num_threads(1)
            one.append(time_once(step))
            torch.set_num_threads(n_threads)
            many.append(time_once(step))
    finally:
        torch.set_num_threads(previous)
    return statistics.median(one), statistics.median(many)


def verdict(load, scaling=None):
    """``[]`` when the run looks trustworthy, else the reasons it does not.

    ``load`` is a ``LoadMonitor.stop()`` dict; ``scaling`` an optional
    ``(one_thread_s, two_thread_s)`` from ``torch_scaling``.
    """
    reasons = []
    if load["load_before"] is None and load["others"] is None:
        reasons.append("neither the load average nor /proc/stat could be read: nothing shows the machine was quiet")
    if load["load_before"] is not None and load["load_before"] > BUSY_LOAD:
        reasons.append(f"load average {load['load_before']:.2f} before the run (> {BUSY_LOAD})")
    if load["others"] is not None and load["others"] > BUSY_OTHERS:
        reasons.append(f"other processes used {100 * load['others']:.0f}% of the CPU time during it "
                       f"(> {100 * BUSY_OTHERS:.0f}%)")
    if load["steal"] is not None and load["steal"] > BUSY_STEAL:
        reasons.append(f"the hypervisor stole {100 * load['steal']:.0f}% of the CPU time "
                       f"(> {100 * BUSY_STEAL:.0f}%)")
    if scaling is not None and scaling[1] >= scaling[0]:
        reasons.append(f"PyTorch at two threads ({1e3 * scaling[1]:.1f} ms) was not faster than at one "
                       f"({1e3 * scaling[0]:.1f} ms)")
    return reasons


def machine_summary():
    """One line: the machine and the libraries (``report_header`` without the load)."""
    return report_header(machine_info())


def describe_load(load):
    if load["load_before"] is None or load["load_after"] is None:
        text = "load average unknown (it could not be read)"
    else:
        text = f"load average {load['load_before']:.2f} before, {load['load_after']:.2f} after"
    if load["others"] is not None:
        text += f"; other processes {100 * load['others']:.0f}% and steal {100 * load['steal']:.0f}% of the CPU"
    return text


def report_header(info, load=None, reasons=None, extra=""):
    """Markdown lines: the machine, the load and the verdict, for the top of a report."""
    lines = [f"Machine: {info['cpu']} ({info['isa']}), {info['usable_cores']} usable of "
             f"{info['logical_cores']} logical cores; Python {info['python']}; NumPy {info['numpy']} with "
             f"{info['blas']} ({info['blas_threads']} threads by default); torch {info['torch']} "
             f"({info['torch_threads']} threads by default); minisegnet {info['minisegnet_threads']} threads "
             f"by default; OPENBLAS_NUM_THREADS={info['openblas_num_threads_env']}"
             + ("; freed memory kept in the process for both libraries (`allocator.keep_freed_memory`, as "
                "`minisegnet train` does)." if info.get("freed_memory_kept") else ".")]
    if extra:
        lines.append(extra)
    if load is not None:
        lines.append(f"Load: {describe_load(load)}.")
    if reasons is not None:
        lines.append("**Reliable run.**" if not reasons else
                     "**UNRELIABLE RUN (busy machine): " + "; ".join(reasons) + ". Do not quote these figures.**")
    return "\n".join(lines)


def result_line(result, reasons):
    """The key figures as one HTML comment line (invisible in Markdown) that
    ``run_all.py`` reads to check the targets."""
    import json

    return "\n<!-- result: " + json.dumps(dict(result, reliable=not reasons)) + " -->"


def markdown_table(header, rows, reasons=None):
    """A Markdown table from a header list and rows of formatted cells; with ``reasons``
    (a non-empty list from ``verdict``) every row is marked unreliable."""
    if reasons:
        header = list(header) + ["UNRELIABLE"]
        rows = [list(row) + ["busy machine"] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- memory -------------------------------------------------------------------------------------
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


def in_fresh_processes(codes, processes=3):
    """Run each of ``codes`` ({setting: python source}) in ``processes`` fresh ``python -c``
    processes, the settings taking turns (a, b, a, b, ...), for what cannot be switched back
    and forth within one process; each must print one JSON object on its last line of output.
    Returns {setting: [the parsed objects, in order]}. Raises ``RuntimeError`` with the
    child's stderr if one fails."""
    results = {setting: [] for setting in codes}
    for _ in range(processes):
        for setting, code in codes.items():
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"child python failed with code {proc.returncode}:\n{proc.stderr}")
            results[setting].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results

