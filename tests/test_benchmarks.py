"""The benchmark scripts' own claims: Winograd's transform (benchmarks/try_winograd.py) computes
the convolution it is timed against, every section run_all.py writes has its place in
docs/benchmarks.md, and the lever tables switch every lever."""
import os
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import bench_conv  # noqa: E402
import bench_gemm  # noqa: E402
import bench_gpu  # noqa: E402
import bench_processes  # noqa: E402
import bench_train_step  # noqa: E402
import run_all  # noqa: E402
import timing  # noqa: E402
import try_winograd  # noqa: E402
from minisegnet.functional import conv_fast  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c_in=st.integers(1, 4), c_out=st.integers(1, 4), half_h=st.integers(1, 5),
       half_w=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_winograd_is_the_3x3_convolution(n, c_in, c_out, half_h, half_w, seed):
    """F(2x2, 3x3) equals conv2d(x, w, padding=1), every tile and border included (float32, its
    transforms' rounding only)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c_in, 2 * half_h, 2 * half_w)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
    expected = F.conv2d(msn.tensor(x.astype(np.float64)), msn.tensor(w.astype(np.float64)), padding=1).numpy()
    np.testing.assert_allclose(try_winograd.winograd_conv2d(x, w), expected, rtol=1e-5, atol=1e-4)


def test_every_run_all_section_has_its_place_in_the_page():
    with open(run_all.DOC) as f:
        doc = f.read()
    for name in list(run_all.SECTIONS) + ["summary"]:
        assert f"<!-- BEGIN run_all: {name} -->" in doc and f"<!-- END run_all: {name} -->" in doc, name
    assert set(run_all.SECTIONS) == set(run_all.QUICK)


def test_the_lever_tables_switch_every_lever():
    """A lever added to conv_fast is measured: bench_gpu switches the CuPy-only ones, bench_conv
    each other one (fast_path switches them all off together), and the step each one a U-Net
    uses (it has no depthwise conv),
    and each switch of max pooling, ReLU and the thread pool (their upper-case bool constants)."""
    levers = set(conv_fast.levers()) - {"fast_path"}
    cupy_only = set(bench_gpu.LEVERS)
    assert cupy_only <= levers
    assert set(bench_conv.LEVERS.values()) - {None} == levers - cupy_only
    assert set(bench_train_step.LEVERS) == levers - {"depthwise"} - cupy_only
    from minisegnet import allocator, parallel
    from minisegnet.functional import activation, pooling

    modules = (("functional.pooling", pooling), ("functional.activation", activation), ("parallel", parallel),
               ("allocator", allocator))
    switches = {f"{prefix}.{name}" for prefix, module in modules
                for name in dir(module) if name.isupper() and isinstance(getattr(module, name), bool)}
    assert set(bench_train_step.CONSTANT_LEVERS) | set(bench_train_step.PROCESS_LEVERS) == switches
    assert bench_train_step.PROCESS_LEVERS == ["allocator.KEEP_FREED"]
    assert "parallel.EVEN_RUNS" in switches and "functional.pooling.MASKS_BY_BITS" in switches


def test_the_grid_sample_lever_tables_switch_every_lever():
    """Every speed lever of functional/sampling.py (its upper-case constants, but ``FRAME``: the
    frame's width, which the algorithm needs) has a table in bench_grid_sample.py --levers, whose
    settings name only real levers and switch each off."""
    import bench_grid_sample
    from minisegnet.functional import sampling

    levers = {name for name in dir(sampling) if name.isupper() and not name.startswith("_")} - {"FRAME"}
    assert set(bench_grid_sample.LEVERS_OFF) == levers
    for lever, settings_off in bench_grid_sample.LEVERS_OFF.items():
        assert set(settings_off) <= levers and settings_off[lever] != getattr(sampling, lever), lever


def test_thread_benchmark_runs_every_kind_of_work(monkeypatch):
    """bench_threads.py's cells run (a few elements of each kind of work, one round) and report
    one ratio per round, each positive: a smoke run of what its table measures."""
    import bench_threads

    monkeypatch.setattr(bench_threads, "TOTAL", 2 * 4096)
    for name, make in bench_threads.kinds(np.random.default_rng(0)).items():
        ratios = bench_threads.measure(make, 4096, repeats=1)
        assert len(ratios) == 1 and ratios[0] > 0, name
    assert bench_threads.cell([1.0, 2.0, 3.0]) == "2.00 (1.50-2.50)"


def test_process_benchmark_times_every_step(monkeypatch):
    """bench_processes.py's rounds run (a small batch, one round): each configuration, the
    two-process step through DataParallel included, gives one positive time."""
    import bench_processes

    import minisegnet as msn

    session = msn.backend.get_backend()
    msn.set_backend("numpy")                    # data parallelism is for the CPU, in either session
    monkeypatch.setattr(bench_processes, "BATCH", 2)
    monkeypatch.setattr(bench_processes, "SIZE", 16)
    monkeypatch.setattr(bench_processes, "EVAL_IMAGES", 4)
    try:
        results = bench_processes.measure(rounds=1)
        held_out = bench_processes.measure_held_out(rounds=1)
        monkeypatch.setattr(bench_processes, "LARGER", ((2, 1),))
        larger = bench_processes.measure_shared_memory(rounds=1)
    finally:
        msn.set_backend(session)
    assert set(results) == {"ours, one thread", "ours, two threads", "ours, two processes",
                            "ours, two processes, plain pipe", "torch, two threads"}
    assert all(len(times) == 1 and times[0] > 0 for times in results.values())
    assert set(held_out) == {"ours, two threads", "ours, two processes", "torch, two threads"}
    assert all(len(times) == 1 and times[0] > 0 for times in held_out.values())
    (parameters, times), = larger.values()
    assert parameters > 0 and set(times) == {"shared", "pipe"}
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())


def test_default_run_benchmark_reports_each_run_and_their_median(capsys):
    """bench_default_run.py runs the command --runs times (here a tiny run, twice) and
    reports a row per run, their median, and the median as its result."""
    import json

    import bench_default_run

    code = bench_default_run.main(["--runs", "2", "--", "--epochs", "1", "--num-train", "8", "--num-val", "4",
                                   "--processes", "1"])
    text = capsys.readouterr().out
    assert code in (0, 3)                                      # 3: the machine was busy
    assert "| run 1 |" in text and "| run 2 |" in text and "**median**" in text
    result = json.loads(text.rsplit("<!-- result: ", 1)[1].split(" -->")[0])
    assert len(result["runs"]) == 2
    assert abs(result["seconds"] - sum(result["runs"]) / 2) < 0.01     # the median of two (runs rounded to 0.01)
    try:
        bench_default_run.main(["--runs", "0"])
    except SystemExit as exit:
        assert exit.code == 2
    else:
        raise AssertionError("--runs 0 was accepted")


def test_each_timed_call_starts_after_a_settle(monkeypatch):
    """time_once busy-waits SETTLE seconds before the clock starts (so threads the other
    library left spinning have stopped) and reports only the call's own time."""
    import time

    import timing

    monkeypatch.setattr(timing, "SETTLE", 0.05)
    calls = []
    start = time.perf_counter()
    took = timing.time_once(lambda: calls.append(time.perf_counter()))
    assert calls[0] - start >= 0.05 and took < 0.05


def test_the_profile_puts_every_product_and_copy_of_conv_fast_in_its_category():
    """Each function of conv_fast.py and conv.py that calls a matmul counts as GEMMs in the
    step's profile, each that builds columns as im2col copies, and conv_depthwise.py's as
    depthwise (a new route whose functions were left out would put its products under
    Python overhead)."""
    import inspect

    import profile_step
    from minisegnet.functional import conv as core, conv_row_taps

    for module in (conv_fast, core, conv_row_taps):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            source = inspect.getsource(fn)
            category = profile_step.our_category(inspect.getsourcefile(fn), name)
            if "matmul(" in source and name not in ("_weight_grad_pieces",):     # its matmul: CuPy's route
                assert category == "GEMMs", name
            if name.startswith("_im2col") or (name.endswith("_columns") and "cols" in source):
                assert category == "im2col copies", name
    # a comprehension's own time goes to the function it is in (Python 3.11 profiles it apart)
    assert profile_step.our_category(inspect.getsourcefile(conv_fast), "<listcomp>") is None
    # the direct depthwise path (its own module) counts as depthwise, not Python overhead
    from minisegnet.functional import conv_depthwise
    for name in conv_depthwise.__all__:
        assert profile_step.our_category(inspect.getsourcefile(conv_depthwise), name) == "depthwise", name


def test_the_thread_split_times_each_threads_columns_and_products_and_restores_them():
    """profile_step.thread_split: every thread's column building and products are counted
    under its own name (the calling thread and the pool's worker both build columns at two
    threads), and the functions it wraps are put back, even when the step fails."""
    import numpy as np

    import bench_train_step as bts
    import profile_step
    from minisegnet import parallel
    from minisegnet.functional import conv as core

    session = msn.backend.get_backend()
    msn.set_backend("numpy")                          # the profile is of the CPU step, in either session
    saved = parallel.MIN_PIECE_BYTES, parallel.set_num_threads(2)
    parallel.MIN_PIECE_BYTES = 0                      # tiny pieces still go to the pool
    try:
        ours, opt, x, y = bts.build_ours(4, 16)
        step = bts.ours_step_function(ours, opt, x, y)
        originals = conv_fast._im2col_unpadded, core._im2col, np.matmul
        split = profile_step.thread_split(step, 2)
    finally:
        parallel.MIN_PIECE_BYTES = saved[0]
        parallel.set_num_threads(saved[1])
        msn.set_backend(session)
    assert (conv_fast._im2col_unpadded, core._im2col, np.matmul) == originals
    threads = {name for _, name, _ in split}
    assert "MainThread" in threads and len(threads) == 2, threads
    for work in ("im2col copies", "GEMMs"):
        for name in threads:
            assert split[work, name, "wall"] > 0 and split[work, name, "cpu"] >= 0, (work, name)
    rows = profile_step.thread_rows(split, split)
    assert [row[0] for row in rows] == ["im2col copies", "GEMMs"] and all(len(row) == 6 for row in rows)

    def failing():
        raise RuntimeError("a failing step")
    with pytest.raises(RuntimeError, match="a failing step"):
        profile_step.thread_split(failing, 1)
    assert (conv_fast._im2col_unpadded, core._im2col, np.matmul) == originals


def test_the_settle_waits_out_a_spinning_thread():
    """A thread of the process still burning CPU (as OpenBLAS's workers do after a GEMM)
    keeps the settle waiting until it stops."""
    import threading
    import time

    import timing

    def spin():
        end = time.perf_counter() + 0.15
        while time.perf_counter() < end:
            pass

    spinner = threading.Thread(target=spin)
    start = time.perf_counter()
    spinner.start()
    timing.settle(seconds=0.0)
    assert time.perf_counter() - start >= 0.14 and not spinner.is_alive()
    spinner.join()


def test_a_new_page_for_another_machine_has_every_section_and_takes_its_tables(tmp_path):
    page = str(tmp_path / "benchmarks-other.md")
    doc = run_all.new_page(page)
    for name in list(run_all.SECTIONS) + ["summary"]:
        assert f"<!-- BEGIN run_all: {name} -->\n(not measured yet)\n<!-- END run_all: {name} -->" in doc, name
    doc = run_all.rewrite(doc, "step", "| a table |", page)
    assert "<!-- BEGIN run_all: step -->\n| a table |\n<!-- END run_all: step -->" in doc
    assert doc.count("(not measured yet)") == len(run_all.SECTIONS)      # the others untouched


def test_bench_gemm_records_each_product_with_its_layout_and_counts_its_work():
    rng = np.random.default_rng(0)
    a, cols = rng.random((16, 48), dtype=np.float32), rng.random((2, 48, 64), dtype=np.float32)

    def step():
        np.matmul(a, cols)                              # the forward's W @ cols
        np.matmul(a, cols)
        np.matmul(cols[:, :16], cols.swapaxes(-1, -2))  # a transposed view on the right

    original = np.matmul
    products = bench_gemm.record_products(step)
    assert np.matmul is original                        # put back
    assert products == {(((16, 48), False), ((2, 48, 64), False)): 2,
                                                  (((2, 16, 64), False), ((2, 64, 48), True)): 1}
    remade = bench_gemm.operand(rng, (2, 64, 48), True)
    assert remade.shape == (2, 64, 48) and bench_gemm.layout(remade) == ((2, 64, 48), True)
    assert bench_gemm.describe((((2, 16, 64), False), ((2, 64, 48), True))) == "(2, 16, 64) @ (2, 48, 64)ᵀ"
    assert bench_gemm.flops((1, 16, 4), (8, 1, 4, 4096)) == 2 * 8 * 16 * 4 * 4096     # broadcast batch of 8


def test_in_fresh_processes_takes_turns_and_reads_the_last_line(tmp_path):
    """Settings alternate (a, b, a, b: load drifts hit both alike), each child's last line is its
    result (noise may precede it), and a failing child is an error with its stderr."""
    import timing

    log = tmp_path / "order.txt"
    code = ("import json\nopen({log!r}, 'a').write({setting!r})\nprint('noise before the result')\n"
            "print(json.dumps({{'setting': {setting!r}}}))")
    codes = {s: code.format(log=str(log), setting=s) for s in ("a", "b")}
    results = timing.in_fresh_processes(codes, processes=2)
    assert log.read_text() == "abab"
    assert results == {"a": [{"setting": "a"}] * 2, "b": [{"setting": "b"}] * 2}
    with pytest.raises(RuntimeError, match="child python failed with code 1:[\\s\\S]*ZeroDivisionError"):
        timing.in_fresh_processes({"bad": "1 / 0"}, processes=1)


def test_the_threads_lever_is_timed_in_fresh_processes_switched_over_as_set(monkeypatch):
    """Both benches time `threads` in fresh processes (interleaved in one process, a two-thread
    OpenBLAS product slowed the pool's next calls), and the ratio is switched / as set."""
    import timing

    assert "threads" in bench_conv.IN_FRESH_PROCESSES and "threads" in bench_train_step.IN_FRESH_PROCESSES
    seen = {}

    def fake(codes, processes=3):
        seen.update(codes)
        return {True: [{"a": 1.0, "b": 2.0}] * processes, False: [{"a": 3.0, "b": 2.0}] * processes}

    monkeypatch.setattr(timing, "in_fresh_processes", fake)
    ratios = bench_conv.fresh_ratios("threads", ["a", "b"], 3, 1, time.perf_counter, None)
    assert ratios == [3.0, 1.0]
    assert "set_lever('threads', True)" in seen[True] and "set_lever('threads', False)" in seen[False]


def test_the_step_benchs_fresh_process_row_is_switched_over_as_set(monkeypatch):
    import argparse

    import timing

    seen = {}

    def fake(codes, processes=3):
        seen.update(codes)
        one = dict(one=0.08, one_faults=0, one_kernel=0, default=0.06, default_faults=0, default_kernel=0)
        return {True: [one] * processes, False: [dict(one, one=0.10, default=0.09)] * processes}

    monkeypatch.setattr(timing, "in_fresh_processes", fake)
    args = argparse.Namespace(batch=2, size=16, model="bench", regime="both", warmup=0, repeats=1)
    row, sentence = bench_train_step.process_row(args, "threads")
    assert row == ["threads (fresh processes)", "80.0", "100.0", "1.25", "60.0", "90.0", "1.50"]
    assert sentence is None
    assert "conv_fast.set_lever('threads', True)" in seen[True]
    assert "conv_fast.set_lever('threads', False)" in seen[False]
    row, sentence = bench_train_step.process_row(args, "allocator.KEEP_FREED")
    assert "allocator.KEEP_FREED = True" in seen[True] and "allocator.KEEP_FREED = False" in seen[False]
    assert sentence.startswith("`allocator.KEEP_FREED` (medians of the processes)")


def test_thread_split_divides_by_the_steps_and_keeps_wall_and_cpu_apart(monkeypatch):
    """Fake clocks make the numbers exact: one matmul per step, 1 s of wall and 0.25 s of CPU time a call."""
    import types

    import numpy as np

    import profile_step

    clock = {"wall": 0.0, "cpu": 0.0}

    def perf_counter():
        clock["wall"] += 1.0
        return clock["wall"]

    def thread_time():
        clock["cpu"] += 0.25
        return clock["cpu"]
    monkeypatch.setattr(profile_step, "time", types.SimpleNamespace(perf_counter=perf_counter, thread_time=thread_time))
    a = np.ones((2, 2))
    split = profile_step.thread_split(lambda: np.matmul(a, a), 4)
    assert split == {("GEMMs", "MainThread", "wall"): 1.0, ("GEMMs", "MainThread", "cpu"): 0.25}


def test_thread_rows_put_each_number_in_its_column():
    import profile_step

    one = {("im2col copies", "MainThread", "cpu"): .010, ("im2col copies", "MainThread", "wall"): .011,
           ("GEMMs", "MainThread", "cpu"): .020, ("GEMMs", "MainThread", "wall"): .021}
    two = {("im2col copies", "MainThread", "wall"): .008, ("im2col copies", "MainThread", "cpu"): .006,
           ("im2col copies", "w", "wall"): .007, ("im2col copies", "w", "cpu"): .005,
           ("GEMMs", "MainThread", "wall"): .012, ("GEMMs", "MainThread", "cpu"): .011,
           ("GEMMs", "w", "wall"): .013, ("GEMMs", "w", "cpu"): .012}
    assert profile_step.thread_rows(one, two) == [
        ["im2col copies", "10.0", "8.0 / 6.0", "7.0 / 5.0", "1.50", "1.10"],
        ["GEMMs", "20.0", "12.0 / 11.0", "13.0 / 12.0", "1.25", "1.15"]]


QUIET = dict(load_before=0.0, load_after=0.0, seconds=1.0, others=0.0, steal=0.0)


class QuietMonitor:
    """A LoadMonitor that saw nothing else on the machine."""

    def start(self):
        return self

    def stop(self):
        return dict(QUIET)


@pytest.mark.parametrize("section", ["augment", "grid-sample", "threads"])
def test_run_all_counts_a_section_that_exited_busy_as_unreliable(monkeypatch, capsys, section):
    """A script exits with 3 when its machine was busy (run_all accepts 3 as "finished, but
    busy"). bench_augment, bench_grid_sample and bench_threads print no ``<!-- result: -->``
    line, so run_all read their result as {} and ``{}.get("reliable", True)``: its closing
    line said "every run reliable" after a busy run. The exit status should count."""
    def busy_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 3, stdout="**UNRELIABLE RUN (busy machine): ...**\n| a | table |\n",
                                           stderr="")

    monkeypatch.setattr(run_all.subprocess, "run", busy_run)
    assert run_all.main(["--quick", "--only", section]) == 0
    err = capsys.readouterr().err
    assert "every run reliable" not in err and f"UNRELIABLE (busy machine): {section}" in err, err


def test_the_conv_memory_table_says_when_the_machine_was_busy(monkeypatch, capsys):
    """docs/benchmarks.md: "The flag is printed in the report and in every table it writes".
    bench_conv's memory table (with its "fwd+bwd s" wall-time column) is printed without
    the verdict (``run_memory`` takes ``reasons`` and drops them; ``main`` passes none), and it
    is measured after ``monitor.stop()``."""
    monkeypatch.setattr(bench_conv, "python_peak_rss_mib", lambda code: (900.0, "150 2.5 (1, 64, 568, 568)"))
    monkeypatch.setattr(timing, "LoadMonitor", QuietMonitor)
    monkeypatch.setattr(timing, "verdict", lambda load, scaling=None: ["load average 3.00 before the run (> 0.5)"])
    code = bench_conv.main(["--layers", "", "--regime", "one", "--memory"])
    out = capsys.readouterr().out
    assert code == 3
    memory = out.split("memory: ", 1)[1]
    table = [line for line in memory.splitlines() if line.startswith("|")]
    assert "fwd+bwd s" in table[0]
    assert "UNRELIABLE" in table[0] and all("busy machine" in row for row in table[2:]), table


def _fake_rounds(names, ms):
    return {name: [ms / 1e3] * 3 for name in names}


def test_the_process_benchmark_flags_a_run_where_torch_gained_nothing_from_two_threads(monkeypatch, capsys):
    """bench_processes times PyTorch at two threads only, and its "ours / torch at two threads"
    ratio is a target of run_all's summary; its verdict never asks whether PyTorch's two
    threads were faster than one (``timing.verdict(load)``, no scaling), so a second core held
    by someone else (torch slower at two threads than at one) still gives a "Reliable run"."""
    step_names = ["ours, one thread", "ours, two threads", "ours, two processes", "ours, two processes, plain pipe",
                  "torch, two threads"]
    monkeypatch.setattr(bench_processes, "measure", lambda rounds, model="default": _fake_rounds(step_names, 100.0))
    monkeypatch.setattr(bench_processes, "measure_held_out", lambda rounds: _fake_rounds(
        ["ours, two threads", "ours, two processes", "torch, two threads"], 50.0))
    monkeypatch.setattr(bench_processes, "measure_shared_memory", lambda rounds: {
        (16, 4): (1000, {"shared": [0.1] * 3, "pipe": [0.2] * 3})})
    monkeypatch.setattr(timing, "LoadMonitor", QuietMonitor)
    # PyTorch's step: 80 ms at one thread, 120 ms at two (the second core was taken)
    monkeypatch.setattr(timing, "torch_scaling", lambda step, n_threads=2, repeats=7: (0.080, 0.120))
    code = bench_processes.main(["--quick"])
    out = capsys.readouterr().out
    assert "UNRELIABLE" in out and code == 3, out[:600]


def test_the_step_benchmark_checks_parity_on_the_network_it_times(monkeypatch, capsys):
    """``--model default`` times minisegnet train's network (base 8, depth 3, Adam), but
    ``parity_check`` always builds the bench network (base 16, depth 2, SGD), so the header's
    "Parity before timing: one step from the same weights" speaks of another network and
    another optimizer than the timed one."""
    models = []
    real = bench_train_step.build_pair

    def recording(batch, size, seed=0, model="bench"):
        models.append(model)
        return real(batch, size, seed, model)

    monkeypatch.setattr(bench_train_step, "build_pair", recording)
    monkeypatch.setattr(bench_train_step, "time_steps", lambda args, ours_step, torch_step, result: ([], None))
    monkeypatch.setattr(timing, "LoadMonitor", QuietMonitor)
    bench_train_step.main(["--model", "default", "--quick", "--no-memory"])
    capsys.readouterr()
    assert models and set(models) == {"default"}, models


def test_the_load_monitor_works_without_a_load_average(monkeypatch):
    """Where the load average cannot be read (os.getloadavg raises OSError when /proc/loadavg
    is missing, as in some sandboxes and containers), LoadMonitor.start crashed the benchmark
    before it measured anything; it should measure, and say the load average is unknown."""
    def no_loadavg():
        raise OSError("Load averages are unobtainable")

    monkeypatch.setattr(timing.os, "getloadavg", no_loadavg)
    load = timing.LoadMonitor().start().stop()
    reasons = timing.verdict(load)
    assert isinstance(reasons, list)
    timing.report_header(timing.machine_info(), load, reasons)


def test_the_vector_isa_is_read_on_arm_too(monkeypatch):
    """On aarch64 Linux /proc/cpuinfo lists the ISA under "Features" (no "flags" line, no
    "model name"), so the ("NEON", "asimd") entry never matched: the ISA read "unknown"."""
    import io

    cpuinfo = ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics\n"
               "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd0c\n\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return io.StringIO(cpuinfo)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(timing, "open", fake_open, raising=False)
    monkeypatch.setattr(timing.platform, "processor", lambda: "aarch64")
    assert "NEON" in timing.machine_info()["isa"]


def test_other_processes_are_measured_against_the_cpus_this_process_may_use(monkeypatch):
    """A process held to CPUs 0-1 (a cpuset, ``taskset``) of a 64-CPU host: another process
    that kept CPU 1 busy for the whole run took half of this run's cores, but LoadMonitor
    divided its jiffies by all 64 CPUs' capacity (``os.cpu_count()``): 1.6%, under
    BUSY_OTHERS, and the run was called reliable."""
    import io

    tck = os.sysconf("SC_CLK_TCK")
    wall = 10.0
    full = int(wall * tck)                        # one CPU busy for the whole run, in jiffies

    def stat(cpu0, cpu1):
        lines = [f"cpu  {cpu0 + cpu1} 0 0 {64 * full * 2} 0 0 0 0 0 0"]
        lines += [f"cpu0 {cpu0} 0 0 {full} 0 0 0 0 0 0", f"cpu1 {cpu1} 0 0 {full} 0 0 0 0 0 0"]
        lines += [f"cpu{k} 0 0 0 {full} 0 0 0 0 0 0" for k in range(2, 64)]
        return "\n".join(lines) + "\n"

    def self_stat(jiffies):
        return "1 (python) R " + " ".join(["0"] * 10) + f" {jiffies} 0 0 0" + " 0" * 30 + "\n"

    state = {"stat": stat(0, 0), "self": self_stat(0), "clock": 0.0}
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/stat":
            return io.StringIO(state["stat"])
        if path == "/proc/self/stat":
            return io.StringIO(state["self"])
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(timing, "open", fake_open, raising=False)
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: state["clock"]))
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(timing.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monitor = timing.LoadMonitor().start()
    # the run: this process keeps CPU 0 busy, another process CPU 1
    state.update(stat=stat(full, full), self=self_stat(full), clock=wall)
    load = monitor.stop()
    assert load["others"] > timing.BUSY_OTHERS and timing.verdict(load), load
