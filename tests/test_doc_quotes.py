"""Numbers the docs quote from a table elsewhere (a benchmark table written by
``benchmarks/run_all.py``, another page's table), tied to the cell they quote: a re-measure
that moves a cell fails here until the sentence that quotes it is updated. Each test quotes
its sentence in its docstring; a sentence reworded fails with "update this test"."""
import re
from pathlib import Path
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _block(page, name):
    """The text between ``BEGIN run_all: name`` and its END on ``page``."""
    text = (DOCS / page).read_text()
    return text.split(f"<!-- BEGIN run_all: {name} -->", 1)[1].split(f"<!-- END run_all: {name} -->", 1)[0]


def _row(block, label, after=None):
    """The cells of the first table row of ``block`` (after the line holding ``after``) whose first cell is ``label``."""
    if after is not None:
        block = block.split(after, 1)[1]
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r}")


def _prose(page):
    """The page's prose, its lines joined (a quoted number may be split over a line break)."""
    return " ".join((DOCS / page).read_text().split())


def test_the_gemm_and_conv_times_performance_md_quotes_are_the_profiles():
    """performance.md, "What the benchmarks show": "(its one-thread profile: A ms against B + C ms),
    and longer on the Xeon (D against E + F ms there)": our GEMMs and PyTorch's conv forward and
    backward, from the one-thread profile tables of the two benchmark pages."""
    prose = _prose("performance.md")
    quoted = re.search(r"one-thread profile: ([\d.]+) ms against ([\d.]+) \+ ([\d.]+) ms\), and longer on the "
                       r"Xeon \(([\d.]+) against ([\d.]+) \+ ([\d.]+) ms there\)", prose)
    assert quoted, "the sentence quoting the profiles has changed: update this test"
    tables = []
    for page in ("benchmarks.md", "benchmarks-xeon-avx512.md"):
        one_thread = _block(page, "profile").split("#### default threads")[0]
        tables += [_row(one_thread, "GEMMs")[0], _row(one_thread, "conv forward")[0],
                   _row(one_thread, "conv backward")[0]]
    assert list(quoted.groups()) == tables


def test_the_thread_split_performance_md_quotes_is_the_xeons_table():
    """performance.md, "Using both cores": two threads "spent X times as long in [the column
    building], together, as one thread's CPU time ..., while the matrix products ... cost Y times
    as long shared": the last table of the Xeon page's profile, column "both threads' wall / 1 thread"."""
    prose = _prose("performance.md")
    quoted = re.search(r"column building spent ([\d.]+) times as long in it.*?matrix products, long operations, "
                       r"cost ([\d.]+) times as long shared", prose)
    assert quoted, "the sentence quoting the thread split has changed: update this test"
    split = _block("benchmarks-xeon-avx512.md", "profile").split("thread by thread", 1)[1]
    header = _row(split, "work")
    wall = header.index("both threads' wall / 1 thread")
    assert [quoted.group(1), quoted.group(2)] == [_row(split, "im2col copies")[wall], _row(split, "GEMMs")[wall]]


def test_the_xeon_step_levers_performance_md_quotes_are_the_table():
    """performance.md: "on the Xeon the row taps pay about as much as the threads: R against T at
    two threads; one product for a layer's kernel rows, `stacked_rows`, S at one thread and S2 at
    two": the Xeon step's lever table, "switched / default" columns (one thread: the 3rd cell,
    two: the 6th)."""
    prose = _prose("performance.md")
    quoted = re.search(r"on the Xeon the row taps pay about as much as the threads: ([\d.]+) against ([\d.]+) at "
                       r"two threads; one product for a layer's kernel rows, `stacked_rows`, ([\d.]+) at one "
                       r"thread and ([\d.]+) at two", prose)
    assert quoted, "the sentence quoting the Xeon's step levers has changed: update this test"
    step = _block("benchmarks-xeon-avx512.md", "step")
    row_taps, threads = _row(step, "row_taps"), _row(step, "threads (fresh processes)")
    stacked = _row(step, "stacked_rows")
    assert list(quoted.groups()) == [row_taps[5], threads[5], stacked[2], stacked[5]]
    assert abs(float(row_taps[5]) - float(threads[5])) <= 0.05          # "about as much"


def test_metrics_md_quotes_fcns_table_2_as_fcn_md_does():
    """metrics.md repeats FCN's Table 2 and quotes "89.1 -> 90.3" and "59.4 -> 62.7"; fcn.md has
    the same table: the two copies and the quotes agree."""
    def table(page):        # the page's first table of FCN rows (fcn.md has a replica's table further on)
        rows = {}
        for line in (DOCS / page).read_text().splitlines():
            if line.startswith("| FCN-"):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if cells[0] in rows:
                    break
                rows[cells[0]] = cells[1:]
        return rows
    ours, theirs = table("metrics.md"), table("fcn.md")
    assert len(ours) == 3 and ours == theirs
    prose = _prose("metrics.md")
    assert f"pixel accuracy moves {ours['FCN-32s'][0]} -> {ours['FCN-8s'][0]}" in prose
    assert f"mean IU {ours['FCN-32s'][2]} -> {ours['FCN-8s'][2]}" in prose


_NUM = r"([\d.]+)"


def _quote(page, pattern, what):
    """The groups of ``pattern`` in ``page``'s prose (lines joined), or a failure naming the sentence."""
    found = re.search(pattern, _prose(page))
    assert found, f"{page}: the sentence quoting {what} has changed: update this test"
    return list(found.groups())


def _cells(block, *labels):
    """The cells after ``labels`` of the first table row of ``block`` whose leading cells are ``labels``."""
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[:len(labels)] == list(labels):
            return cells[len(labels):]
    raise AssertionError(f"no row {labels!r}")


def _column(block, header, label, column, after=None):
    """The cell in column ``column`` (named in the header row whose first cell is ``header``) of row ``label``."""
    if after is not None:
        block = block.split(after, 1)[1]
    return _row(block, label)[_row(block, header).index(column)].strip("*")


def _check(page, sentence, pairs):
    """Each (quoted, (cell description, cell value)) pair must agree; the message names both."""
    wrong = [f"{quoted!r} where {cell} reads {value!r}" for quoted, (cell, value) in pairs if quoted != value]
    assert not wrong, f"{page}, {sentence}: " + "; ".join(wrong)


_EPYC, _XEON = "benchmarks.md", "benchmarks-xeon-avx512.md"
_ZEN4 = "benchmarks-epyc-avx512.md"         # the third machine: an AMD EPYC with AVX-512
_STEP1, _STEP2 = "U-Net step, one thread, ours / torch", "U-Net step, default threads (2 here), ours / torch"


def _summary(page, target):
    return _row(_block(page, "summary"), target)[0]


def test_benchmarks_md_the_summarys_history_ends_with_the_summary():
    """benchmarks.md, under the summary: "The runs of the step since then read ... and 1.54 at two
    threads, and ... and 1.39 at one (the table above is the last ... and 143 ms in the table above" ...
    "has been met by four of the last seven runs ... (1.16 in the table below)" ... "read ... and 1.43
    in the last four runs ... two of four at the target ... at two threads ... and 1.71 in the last three"."""
    two, one, torch_ms = _quote(_EPYC, r"The runs of the step since then read ([\d., and]+?) at two threads, and "
                                       r"([\d., and]+?) at one \(the table above is the last.*?and ([\d.]+) ms in "
                                       r"the table above", "the step's runs")
    two, one = re.findall(r"[\d.]+\d", two), re.findall(r"[\d.]+\d", one)
    met, runs, processes = _quote(_EPYC, r"at two threads has been met by (\w+) of the last (\w+) runs, so not met, "
                                         r"though the two-process step \(([\d.]+) in the table below\)",
                                  "how many runs met the step's target")
    words = {"none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
    step = _block(_EPYC, "step")
    s1_one, of, s1_two, last = _quote(_EPYC, r"stride-1 convolution forward at one thread read ([\d., and]+?) in the "
                                             r"last \w+ runs \(the table below is the fourth\), on the same code for "
                                             r"those layers: (\w+) of \w+ at the target, so not met; at two threads "
                                             r"([\d., and]+?) in the last (\w+)", "the stride-1 convolutions' runs")
    s1_one, s1_two = re.findall(r"[\d.]+\d", s1_one), re.findall(r"[\d.]+\d", s1_two)
    _check(_EPYC, "the summary's history", [
        (two[-1], ("the summary's two-thread step", _summary(_EPYC, _STEP2))),
        (one[-1], ("the summary's one-thread step", _summary(_EPYC, _STEP1))),
        (torch_ms, ("the step table's one-thread torch ms, rounded",
                    f"{float(_cells(step, 'U-Net step, batch 8, 3x64x64', '1 thread, CPU time')[1]):.0f}")),
        (words[met], ("the runs at or under 1.5", sum(float(r) <= 1.5 for r in two))),
        (words[runs], ("the runs listed", len(two))),
        (processes, ("the summary's two-process step",
                     _summary(_EPYC, "U-Net step, two processes (data parallelism), ours / torch at two threads"))),
        (s1_one[-1], ("the summary's one-thread stride-1 forward",
                      _summary(_EPYC, "stride-1 conv forward, median ratio, one thread"))),
        (s1_two[-1], ("the summary's two-thread stride-1 forward",
                      _summary(_EPYC, "stride-1 conv forward, median ratio, default threads"))),
        (words[of], ("the one-thread stride-1 runs at or under 1.5", sum(float(r) <= 1.5 for r in s1_one))),
        (words[last], ("the two-thread stride-1 runs listed", len(s1_two))),
    ])


def test_benchmarks_md_two_machines_default_run_and_step_are_the_tables():
    """benchmarks.md, "Two machines": "The default run takes 22.3 s there (the median of three: 22.3, 22.3
    and 21.6 s; ...; 66.0 s here), with a held-out mean IU of 0.974 there and 0.972 here" and "PyTorch's
    one-thread step takes 54.1 ms there (...) against 143.4 ms here, ours 88.8 (...) against 199.4 ms: the
    ratios grow to 1.64 at one thread and 2.23 at two (1.39 and 1.54 here;"."""
    q = _quote(_EPYC, r"The default run\*\* takes ([\d.]+) s there \(the median of three: ([\d.]+), ([\d.]+) and "
                      r"([\d.]+) s;.*?; ([\d.]+) s here\), with a held-out mean IU of ([\d.]+) there and ([\d.]+) here",
               "the default runs")
    xeon, epyc = _block(_XEON, "default-run"), _block(_EPYC, "default-run")
    iu = "best held-out mean IU"
    _check(_EPYC, "Two machines, the default run", list(zip(q, [
        ("the Xeon's median run", _cells(xeon, "**median**")[0].strip("*")),
        ("the Xeon's run 1", _cells(xeon, "run 1")[0]), ("the Xeon's run 2", _cells(xeon, "run 2")[0]),
        ("the Xeon's run 3", _cells(xeon, "run 3")[0]),
        ("the EPYC's median run", _cells(epyc, "**median**")[0].strip("*")),
        ("the Xeon's best mean IU", _column(xeon, "`minisegnet train`", "run 2", iu).split()[0]),
        ("the EPYC's best mean IU", _column(epyc, "`minisegnet train`", "run 2", iu).split()[0]),
    ])))
    q = _quote(_EPYC, r"PyTorch's one-thread step takes ([\d.]+) ms there \([^)]*\) against ([\d.]+) ms here, ours "
                      r"([\d.]+) \([^)]*\) against ([\d.]+) ms: the ratios grow to ([\d.]+) at one thread and ([\d.]+) "
                      r"at two \(([\d.]+) and ([\d.]+) here;", "the steps")
    row = "U-Net step, batch 8, 3x64x64"
    one, two = "1 thread, CPU time", "default threads, wall time"
    x1, e1 = _cells(_block(_XEON, "step"), row, one), _cells(_block(_EPYC, "step"), row, one)
    x2, e2 = _cells(_block(_XEON, "step"), row, two), _cells(_block(_EPYC, "step"), row, two)
    _check(_EPYC, "Two machines, the step", list(zip(q, [
        ("the Xeon's one-thread torch ms", x1[1]), ("the EPYC's one-thread torch ms", e1[1]),
        ("the Xeon's one-thread ours ms", x1[0]), ("the EPYC's one-thread ours ms", e1[0]),
        ("the Xeon's one-thread ratio", x1[2]), ("the Xeon's two-thread ratio", x2[2]),
        ("the EPYC's one-thread ratio", e1[2]), ("the EPYC's two-thread ratio", e2[2]),
    ])))


def test_benchmarks_md_two_machines_products_are_the_xeons_gemm_and_profile():
    """benchmarks.md, "Two machines": "the step's matrix products take 49.8 ms in NumPy and 42.4 ms in
    `torch.matmul` ... (84.7 and 51.3 ms)" ... "NumPy's 49.8 ms are 0.97x PyTorch's whole step" ... "our
    fixed cost of a step on one 8x8 image alone is 4.7 ms there against PyTorch's 2.3"; and the memory
    table's exception "0.4 s against 0.3 s"."""
    q = _quote(_EPYC, r"the step's matrix products take ([\d.]+) ms in NumPy and ([\d.]+) ms in `torch.matmul`.*?"
                      r"in that run \(([\d.]+) and ([\d.]+) ms\).*?NumPy's ([\d.]+) ms are ([\d.]+)x PyTorch's whole "
                      r"step.*?on one 8x8 image alone is ([\d.]+) ms there against PyTorch's ([\d.]+)",
               "the Xeon's products")
    gemm = _block(_XEON, "gemm")
    total = _cells(gemm, "**all of the step's products**")
    whole = re.search(r"ours ([\d.]+) ms, PyTorch's ([\d.]+) ms", gemm).groups()
    fixed = re.search(r"Fixed cost of a step \(the same network on one 8x8 image\): ours ([\d.]+) ms, torch ([\d.]+) ms",
                      _block(_XEON, "profile").split("#### default threads")[0]).groups()
    _check(_EPYC, "Two machines, the products", list(zip(q, [
        ("the gemm table's NumPy total", total[1].strip("*")), ("its PyTorch total", total[2].strip("*")),
        ("the gemm table's whole step, ours", whole[0]), ("its whole step, PyTorch's", whole[1]),
        ("the gemm table's NumPy total", total[1].strip("*")),
        ("the gemm table's last line", re.search(r"alone take ([\d.]+)x PyTorch's whole step", gemm).group(1)),
        ("the Xeon's one-thread fixed cost, ours", fixed[0]), ("its fixed cost, torch", fixed[1]),
    ])))
    xeon_s, epyc_s = _quote(_EPYC, r"the original U-Net's first layer in the memory table is the exception: "
                                   r"([\d.]+) s against ([\d.]+) s", "the memory table's exception")
    first, col = "3 -> 64, 3x3, 1x3x572x572", "fwd+bwd s"
    _check(_EPYC, "Two machines, the memory table's exception", [
        (xeon_s, ("the Xeon's memory table", _column(_block(_XEON, "conv"), "layer (one image, float32)", first, col))),
        (epyc_s, ("the EPYC's memory table", _column(_block(_EPYC, "conv"), "layer (one image, float32)", first, col))),
    ])
    assert float(xeon_s) > float(epyc_s), "the Xeon's first layer is no longer the slower: the exception is gone"


_PROCESSES = "ours, two processes of one thread (4 images each)"
_BENCH_NET = "the step benchmark's U-Net (base 16, depth 2, SGD)"
_DEFAULT_NET = "minisegnet train's U-Net (base 8, depth 3, Adam)"


def test_benchmarks_md_two_machines_data_parallelism_and_thread_pool_are_the_tables():
    """benchmarks.md, "Two machines": "Data parallelism brings `minisegnet train`'s step to 1.12 of PyTorch's
    two-thread step there and 1.35 here, the step benchmark's network's to 1.57 there and 1.16 here" and
    "The thread pool ... (... a median of 1.25, layers a-k 1.19-1.59) and on the step (76.6 ms off against
    65.2 ms on: 1.17;"."""
    q = _quote(_EPYC, r"brings `minisegnet train`'s step to ([\d.]+) of PyTorch's two-thread step there and ([\d.]+) "
                      r"here, the step benchmark's network's to ([\d.]+) there and ([\d.]+) here", "data parallelism")
    xeon, epyc = _block(_XEON, "processes"), _block(_EPYC, "processes")
    _check(_EPYC, "Two machines, data parallelism", list(zip(q, [
        ("the Xeon's default network on two processes", _cells(xeon, _DEFAULT_NET, _PROCESSES)[1]),
        ("the EPYC's default network on two processes", _cells(epyc, _DEFAULT_NET, _PROCESSES)[1]),
        ("the Xeon's benchmark network on two processes", _cells(xeon, _BENCH_NET, _PROCESSES)[1]),
        ("the EPYC's benchmark network on two processes", _cells(epyc, _BENCH_NET, _PROCESSES)[1]),
    ])))
    median, low, high, off, on, ratio = _quote(
        _EPYC, r"a median of ([\d.]+), layers a-k ([\d.]+)-([\d.]+)\) and on the step \(([\d.]+) ms off against "
               r"([\d.]+) ms on: ([\d.]+);", "the thread pool on the Xeon")
    layers = _cells(_block(_XEON, "conv").split("default threads, wall time")[-1],
                    "threads off (OpenBLAS threads only), fresh processes")
    step = _row(_block(_XEON, "step"), "threads (fresh processes)")
    _check(_EPYC, "Two machines, the thread pool", [
        (median, ("the Xeon's two-thread conv lever row 'threads off', median", layers[-1])),
        (low, ("that row's smallest layer", min(layers[:-1], key=float))),
        (high, ("that row's largest layer", max(layers[:-1], key=float))),
        (off, ("the Xeon's step lever row 'threads', two threads switched ms", step[4])),
        (on, ("that row's default ms", step[3])), (ratio, ("that row's switched / default", step[5])),
    ])


def test_benchmarks_md_two_machines_augmentation_and_grid_sample_are_the_tables():
    """benchmarks.md, "Two machines": "Augmentation adds 22.9% to an epoch there (27.1% here: ...), and
    `grid_sample` forward+backward on (4, 3, 256, 256) is 2.18x PyTorch at one thread and 3.02x at two
    there, ... 1.90 and 2.28 here, in an older run) ... take 1.42x and 1.07x PyTorch's whole forward"."""
    q = _quote(_EPYC, r"Augmentation\*\* adds ([\d.]+%) to an epoch there \(([\d.]+%) here: .*?256\) is ([\d.]+)x "
                      r"PyTorch at one thread and ([\d.]+)x at two there, .*?; ([\d.]+) and ([\d.]+) here, in an older "
                      r"run\).*?take ([\d.]+)x and ([\d.]+)x PyTorch's whole forward", "augmentation and grid_sample")
    big, ratio = "(4, 3, 256, 256)", "fwd+bwd ratio"

    def main(page, regime):
        block = _block(page, "grid-sample").split("With BLOCK_ELEMENTS")[0]
        return _cells(block, big, regime)[_row(block, "input (N, C, H, W)").index(ratio) - 1]
    floor = _block(_XEON, "grid-sample").split("A floor:", 1)[1]
    _check(_EPYC, "Two machines, augmentation and grid_sample", list(zip(q, [
        ("the Xeon's augment table, 'slower by'", _row(_block(_XEON, "augment"), "slower by")[0]),
        ("the EPYC's augment table, 'slower by'", _row(_block(_EPYC, "augment"), "slower by")[0]),
        ("the Xeon's grid-sample table, one thread", main(_XEON, "1 thread, CPU time")),
        ("the Xeon's grid-sample table, two threads", main(_XEON, "default threads, wall time")),
        ("the EPYC's grid-sample table, one thread", main(_EPYC, "1 thread, CPU time")),
        ("the EPYC's grid-sample table, two threads", main(_EPYC, "default threads, wall time")),
        ("the Xeon's floor table at (8, 32, 64, 64)", _row(floor, "(8, 32, 64, 64)")[2]),
        ("the Xeon's floor table at (4, 3, 256, 256)", _row(floor, big)[2]),
    ])))


def test_benchmarks_md_the_thread_split_it_quotes_is_the_xeons_table():
    """benchmarks.md, "Where the time goes": "the two threads together spent 2.32 times as long inside the
    column building as one thread's CPU time alone (their CPU time, 1.48 times), and 1.09 times as long in
    the products (1.05 times the CPU time;" (performance.md quotes the wall figures too)."""
    q = _quote(_EPYC, r"threads together spent ([\d.]+) times as long inside the column building as one thread's CPU "
                      r"time alone \(their CPU time, ([\d.]+) times\), and ([\d.]+) times as long in the products "
                      r"\(([\d.]+) times the CPU time;", "the thread split")
    split = _block(_XEON, "profile").split("thread by thread", 1)[1]
    wall, cpu = "both threads' wall / 1 thread", "both threads' CPU / 1 thread"
    _check(_EPYC, "Where the time goes, the thread split", list(zip(q, [
        ("im2col copies, " + wall, _column(split, "work", "im2col copies", wall)),
        ("im2col copies, " + cpu, _column(split, "work", "im2col copies", cpu)),
        ("GEMMs, " + wall, _column(split, "work", "GEMMs", wall)),
        ("GEMMs, " + cpu, _column(split, "work", "GEMMs", cpu)),
    ])))


def test_benchmarks_md_threads_and_processes_prose_is_the_tables():
    """benchmarks.md: "the product ... gains 1.22x at 4096 elements here, and loses on the Xeon: 0.65";
    "(216 against 248 ms on two threads in this table" ...; "shared memory was faster by 3% for the step
    benchmark's network ... and by 8% for the default one"; "shared memory pays: 1.05x for a U-Net of 1.9 M
    parameters and 1.14x for one of 7.8 M in this table"."""
    here, xeon = _quote(_EPYC, r"gains ([\d.]+)x at 4096 elements here, and loses on the Xeon: ([\d.]+)",
                        "the matrix product at 4096 elements")
    def product(page):
        cell = _column(_block(page, "threads"), "work (one task)", "matrix product (16 x 72 weights)", "4096 elements")
        return cell.split()[0]          # "1.22 (1.15-1.26)": the median, then the interquartile range
    _check(_EPYC, "What a second thread buys", [
        (here, ("the EPYC's threads table, matrix product at 4096", product(_EPYC))),
        (xeon, ("the Xeon's threads table, matrix product at 4096", product(_XEON))),
    ])
    assert float(here) > 1 > float(xeon), "'gains' here and 'loses' on the Xeon no longer hold"
    procs = _block(_EPYC, "processes")
    q = _quote(_EPYC, r"\((\d+) against (\d+) ms on two threads in this table, an eighth less, where the steps lose",
               "the held-out pass")
    def ms(*labels):                    # "247.6 (236.5-257.2)": the median's ms
        return float(_cells(procs, *labels)[0].split()[0])
    _check(_EPYC, "What a second process buys, the held-out pass", [
        (q[0], ("held-out pass, two processes, rounded", f"{ms('ours, two processes (4 images each)'):.0f}")),
        (q[1], ("held-out pass, two threads, rounded", f"{ms('ours, two threads (the pool)'):.0f}")),
    ])
    bench, default = _quote(_EPYC, r"in this table shared memory was faster by (\d+)% for the step benchmark's network "
                                   r"\(.*?\) and by (\d+)% for the default one", "shared memory against the pipe")
    pipe = "the same, every array through the pipe (shared_memory=False)"

    def gain(net):
        return f"{(ms(net, pipe) / ms(net, _PROCESSES) - 1) * 100:.0f}"
    small, large = _quote(_EPYC, r"shared memory pays: ([\d.]+)x for a U-Net of 1.9 M parameters and ([\d.]+)x for one "
                                 r"of 7.8 M in this table", "shared memory as the weights grow")
    _check(_EPYC, "What a second process buys, shared memory", [
        (bench, ("the benchmark network's pipe / shared, in %", gain(_BENCH_NET))),
        (default, ("the default network's pipe / shared, in %", gain(_DEFAULT_NET))),
        (small, ("pipe / shared, base 16 depth 4",
                 _cells(procs, "U-Net base 16, depth 4 (1.9 M parameters, 7 MiB of weights)")[2])),
        (large, ("pipe / shared, base 32 depth 4",
                 _cells(procs, "U-Net base 32, depth 4 (7.8 M parameters, 30 MiB of weights)")[2])),
    ])


def test_benchmarks_md_the_default_runs_history_and_keep_freed_pairs_are_the_table():
    """benchmarks.md, "The default `minisegnet train`": "and now 66.0 s (the table above, with the allocator
    lever, which the second table shows saving 7-9% of the command ...; its runs without the lever took 69.4
    and 73.2 s"; and the `allocator.KEEP_FREED` lever: "took 1.07x and 1.09x as long without it in the two
    pairs of [its own table](...) (69.4 against 64.9 s, 73.2 against 67.1 s)"."""
    now, low, high, off1, off2 = _quote(
        _EPYC, r"and now ([\d.]+) s \(the table above, with the allocator lever, which the second table shows saving "
               r"(\d+)-(\d+)% of the command within the same hour; its runs without the lever took ([\d.]+) and "
               r"([\d.]+) s", "the default run's history")
    run = _block(_EPYC, "default-run")
    p1, p2 = _cells(run, "pair 1"), _cells(run, "pair 2")
    _check(_EPYC, "the default run's history", [
        (now, ("the median run", _cells(run, "**median**")[0].strip("*"))),
        (low, ("pair 1's off / on, in %", f"{(float(p1[2]) - 1) * 100:.0f}")),
        (high, ("pair 2's off / on, in %", f"{(float(p2[2]) - 1) * 100:.0f}")),
        (off1, ("pair 1, off", p1[0])), (off2, ("pair 2, off", p2[0])),
    ])
    q = _quote(_EPYC, r"took ([\d.]+)x and ([\d.]+)x as long without it in the two pairs of \[its own table\]\([^)]*\) "
                      r"\(([\d.]+) against ([\d.]+) s, ([\d.]+) against ([\d.]+) s\)", "KEEP_FREED's pairs")
    _check(_EPYC, "the KEEP_FREED lever", list(zip(q, [
        ("pair 1's off / on", p1[2]), ("pair 2's off / on", p2[2]), ("pair 1, off", p1[0]), ("pair 1, on", p1[1]),
        ("pair 2, off", p2[0]), ("pair 2, on", p2[1]),
    ])))


def test_benchmarks_md_the_grid_sample_prose_is_this_pages_and_the_xeons_tables():
    """benchmarks.md, "grid_sample": "(1.26x and 1.18x against 1.71x and 1.42x; our forward pass on (8, 32,
    64, 64) is the exception, 1.36x against 1.20x)"; "met: 2.28 in the table below ... took 10.1 ms";
    "reads 21.6 ms without it against the main table's 23.1 ms with it"; "moved between 7.7 and 10.1 ms
    across this run's five tables"; "without `KEEP_READS`, 3.68 against 2.28; whole images, 2.88"; the
    floor: "3.37 ms there, where PyTorch's whole forward took 3.16 ms in that run"; the frame of zeros:
    "from 2.53 to 2.18 (one thread) and from 3.66 to 3.02 (two threads) at (4, 3, 256, 256), and from 1.75
    to 1.78 and 2.68 to 2.51 at (8, 32, 64, 64)"."""
    small, big = "(8, 32, 64, 64)", "(4, 3, 256, 256)"
    one, two = "1 thread, CPU time", "default threads, wall time"
    header = ["regime", "fwd ours ms", "fwd torch ms", "fwd ratio", "fwd+bwd ours ms", "fwd+bwd torch ms",
              "fwd+bwd ratio", "noise"]

    def tables(page):
        """The grid-sample block's five timing tables: main, then the four levers', as {name: cell}."""
        parts = _block(page, "grid-sample").split("\nWith ")[:5]
        for part in parts:
            assert _row(part, "input (N, C, H, W)") == header, f"{page}: the grid-sample tables' columns changed"
        return [lambda size, regime, col, p=p: _cells(p, size, regime)[header.index(col) - 1] for p in parts]
    main, blocks, keep, beside, _serial = tables(_EPYC)

    def gain(who, size, fwd="fwd+bwd"):
        return f"{float(main(size, one, f'{fwd} {who} ms')) / float(main(size, two, f'{fwd} {who} ms')):.2f}"
    q = _quote(_EPYC, r"\(([\d.]+)x and ([\d.]+)x against ([\d.]+)x and ([\d.]+)x; our forward pass on \(8, 32, 64, "
                      r"64\) is the exception, ([\d.]+)x against ([\d.]+)x\)", "the second core's gain")
    _check(_EPYC, "grid_sample, what the second core buys", list(zip(q, [
        ("ours, (8, 32, 64, 64), one-thread / two-thread fwd+bwd ms", gain("ours", small)),
        ("ours, (4, 3, 256, 256)", gain("ours", big)),
        ("torch, (8, 32, 64, 64)", gain("torch", small)), ("torch, (4, 3, 256, 256)", gain("torch", big)),
        ("ours, (8, 32, 64, 64), forward", gain("ours", small, "fwd")),
        ("torch, (8, 32, 64, 64), forward", gain("torch", small, "fwd")),
    ])))
    q = _quote(_EPYC, r"is not met: ([\d.]+) in the table below, taken in a fast hour of the host \(PyTorch's own "
                      r"forward\+backward at that size took ([\d.]+) ms.*?reads ([\d.]+) ms without it against the "
                      r"main table's ([\d.]+) ms with it.*?moved between ([\d.]+) and ([\d.]+) ms across this run's "
                      r"five tables.*?without `KEEP_READS`, ([\d.]+) against ([\d.]+); whole images, ([\d.]+)\.",
               "the (4, 3, 256, 256) target")
    torch_times = [t(big, two, "fwd+bwd torch ms") for t in tables(_EPYC)]
    _check(_EPYC, "grid_sample, the target at (4, 3, 256, 256)", list(zip(q, [
        ("the main table's two-thread fwd+bwd ratio", main(big, two, "fwd+bwd ratio")),
        ("the main table's two-thread fwd+bwd torch ms", main(big, two, "fwd+bwd torch ms")),
        ("SCATTER_BESIDE = False, two-thread fwd+bwd ours ms", beside(big, two, "fwd+bwd ours ms")),
        ("the main table's two-thread fwd+bwd ours ms", main(big, two, "fwd+bwd ours ms")),
        ("the five tables' smallest torch fwd+bwd ms", min(torch_times, key=float)),
        ("the five tables' largest torch fwd+bwd ms", max(torch_times, key=float)),
        ("KEEP_READS = False, two-thread fwd+bwd ratio", keep(big, two, "fwd+bwd ratio")),
        ("the main table's two-thread fwd+bwd ratio", main(big, two, "fwd+bwd ratio")),
        ("BLOCK_ELEMENTS = None, two-thread fwd+bwd ratio", blocks(big, two, "fwd+bwd ratio")),
    ])))
    ours, torch = _quote(_EPYC, r"times the gathers of the whole forward: ([\d.]+) ms there, where PyTorch's whole "
                                r"forward took ([\d.]+) ms in that run", "the Xeon's floor")
    floor = _block(_XEON, "grid-sample").split("A floor:", 1)[1]
    _check(_EPYC, "grid_sample, the Xeon's floor", [
        (ours, ("the Xeon's floor table, our gathers alone at (4, 3, 256, 256)", _row(floor, big)[0])),
        (torch, ("the Xeon's floor table, torch forward at (4, 3, 256, 256)", _row(floor, big)[1])),
    ])
    q = _quote(_EPYC, r"The Xeon's table went from [\d.]+ to ([\d.]+) \(one thread\) and from [\d.]+ to ([\d.]+) \(two "
                      r"threads\) at \(4, 3, 256, 256\), and from [\d.]+ to ([\d.]+) and [\d.]+ to ([\d.]+) at \(8, 32, "
                      r"64, 64\)", "the frame of zeros")
    xeon = tables(_XEON)[0]
    _check(_EPYC, "grid_sample, the frame of zeros", list(zip(q, [
        ("the Xeon's main table, (4, 3, 256, 256), one thread", xeon(big, one, "fwd+bwd ratio")),
        ("the Xeon's main table, (4, 3, 256, 256), two threads", xeon(big, two, "fwd+bwd ratio")),
        ("the Xeon's main table, (8, 32, 64, 64), one thread", xeon(small, one, "fwd+bwd ratio")),
        ("the Xeon's main table, (8, 32, 64, 64), two threads", xeon(small, two, "fwd+bwd ratio")),
    ])))


def test_benchmarks_md_the_levers_prose_is_the_lever_tables():
    """benchmarks.md, "The speed levers": `threads`: "every layer runs slower with the lever off (a median
    of 1.25), and the step 1.17x slower" ... "(layers a, i and k in this run's table" ... "(1.21 at two
    threads in the step's lever table)"; `reuse_buffers`: "1.26 against 1.33 with every lever as set";
    `depthwise`: "layer j reads 3.77 off against 4.83 on at one thread, and 4.25 against 6.36 at two";
    `stacked_rows`: "79.2 against 77.1 ms at one thread (1.03) and 71.5 against 70.2 ms at two (1.02)";
    `keep_columns`: "four of eleven layers faster with it on, by 2-6%, and a median of 1.02";
    `allocator.KEEP_FREED`: "2531 a step and 9.3 ms of kernel time without the lever at one thread against
    28 and 0.5 ms with it, yet the step's CPU time moved only by 1.02x (1.07x at two threads"."""
    layers = list("abcdefghijk")
    xeon_conv2 = _block(_XEON, "conv").split("default threads, wall time")[-1]
    epyc_conv = _block(_EPYC, "conv")
    epyc1, epyc2 = epyc_conv.split("default threads, wall time")[0], epyc_conv.split("default threads, wall time")[-1]
    median, step = _quote(_EPYC, r"every layer runs slower with the lever off \(a median of ([\d.]+)\), and the step "
                                 r"([\d.]+)x slower", "the threads lever on the Xeon")
    threads_off = _cells(xeon_conv2, "threads off (OpenBLAS threads only), fresh processes")
    assert min(float(c) for c in threads_off[:-1]) > 1, "a layer of the Xeon's row is no longer slower with the pool off"
    named, epyc_step = _quote(_EPYC, r"single layers looked \*faster\* with the lever off \(layers ([a-k, and]+) in "
                                     r"this run's table.*?over a step it paid \(([\d.]+) at two threads in the step's "
                                     r"lever table\)", "the threads lever on the EPYC")
    default2, off2 = _cells(epyc2, "all levers as set by default"), _cells(epyc2, "threads off (OpenBLAS threads only)")
    faster = [x for x, d, o in zip(layers, default2, off2) if float(o) < float(d)]
    reuse_off, reuse_on = _quote(_EPYC, r"the EPYC's conv rows at one thread even lower with it off, ([\d.]+) against "
                                        r"([\d.]+) with every lever as set", "reuse_buffers")
    j1_off, j1_on, j2_off, j2_on = _quote(_EPYC, r"layer j reads ([\d.]+) off against ([\d.]+) on at one thread, and "
                                                 r"([\d.]+) against ([\d.]+) at two", "the depthwise lever")
    j = layers.index("j")
    depthwise = "strided depthwise convs run directly (depthwise on)"
    _check(_EPYC, "The speed levers, threads, reuse_buffers, depthwise", [
        (median, ("the Xeon's two-thread conv lever row 'threads off', median", threads_off[-1])),
        (step, ("the Xeon's step lever row 'threads (fresh processes)', two threads",
                _row(_block(_XEON, "step"), "threads (fresh processes)")[5])),
        (re.findall(r"\b[a-k]\b", named), ("the EPYC's two-thread layers faster with threads off", faster)),
        (epyc_step, ("the EPYC's step lever row 'threads', two threads", _row(_block(_EPYC, "step"), "threads")[5])),
        (reuse_off, ("the EPYC's one-thread conv lever row 'no buffer reuse', median",
                     _cells(epyc1, "no buffer reuse")[-1])),
        (reuse_on, ("the EPYC's one-thread default row, median", _cells(epyc1, "all levers as set by default")[-1])),
        (j1_off, ("the EPYC's one-thread default row, layer j", _cells(epyc1, "all levers as set by default")[j])),
        (j1_on, ("the EPYC's one-thread depthwise-on row, layer j", _cells(epyc1, depthwise)[j])),
        (j2_off, ("the EPYC's two-thread default row, layer j", default2[j])),
        (j2_on, ("the EPYC's two-thread depthwise-on row, layer j", _cells(epyc2, depthwise)[j])),
    ])
    q = _quote(_EPYC, r"reads ([\d.]+) against ([\d.]+) ms at one thread \(([\d.]+)\) and ([\d.]+) against ([\d.]+) ms "
                      r"at two \(([\d.]+)\)", "the stacked_rows lever")
    stacked = _row(_block(_XEON, "step"), "stacked_rows")
    _check(_EPYC, "The speed levers, stacked_rows", list(zip(q, [
        ("one thread, switched ms", stacked[1]), ("one thread, default ms", stacked[0]),
        ("one thread, switched / default", stacked[2]), ("two threads, switched ms", stacked[4]),
        ("two threads, default ms", stacked[3]), ("two threads, switched / default", stacked[5]),
    ])))
    count, low, high, kc_median = _quote(_EPYC, r"has (\w+) of eleven layers faster with it on, by (\d+)-(\d+)%, and a "
                                                r"median of ([\d.]+)", "the keep_columns lever")
    kept = _cells(xeon_conv2, "forward columns kept for the weight gradient (keep_columns on)")
    faster = [float(c) for c in kept[:-1] if float(c) < 1]
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
    _check(_EPYC, "The speed levers, keep_columns", [
        (words.get(count), ("the Xeon's two-thread keep_columns row, layers under 1", len(faster))),
        (low, ("the least of them, in %", f"{(1 - max(faster)) * 100:.0f}")),
        (high, ("the most, in %", f"{(1 - min(faster)) * 100:.0f}")),
        (kc_median, ("that row's median", kept[-1])),
    ])
    q = _quote(_EPYC, r"in its run, (\d+) a step and ([\d.]+) ms of kernel time without the lever at one thread against "
                      r"(\d+) and ([\d.]+) ms with it, yet the step's CPU time moved only by ([\d.]+)x \(([\d.]+)x at "
                      r"two threads", "the KEEP_FREED lever's faults")
    step_block = _block(_EPYC, "step")
    faults = re.search(r"one thread: (\d+) page faults and ([\d.]+) ms of kernel time a step with it on, (\d+) and "
                       r"([\d.]+) ms off", step_block).groups()
    keep_freed = _row(step_block, "allocator.KEEP_FREED (fresh processes)")
    _check(_EPYC, "The speed levers, allocator.KEEP_FREED", list(zip(q, [
        ("the faults off, one thread", faults[2]), ("the kernel ms off", faults[3]),
        ("the faults on", faults[0]), ("the kernel ms on", faults[1]),
        ("the step lever row, one thread", keep_freed[2]), ("the step lever row, two threads", keep_freed[5]),
    ])))


def test_benchmarks_md_the_settles_runs_end_with_the_tables():
    """benchmarks.md, "How the measuring works": "with this settle 0.98 against 1.24, ... and 1.64 against
    1.48 in four runs (the table below is the fourth), and the step's 1.19, 1.25, 1.18 and 1.21"."""
    off, on, step = _quote(_EPYC, r"([\d.]+) against ([\d.]+) in four runs \(the table below is the fourth\), and the "
                                  r"step's [\d.]+, [\d.]+, [\d.]+ and ([\d.]+)", "the settle's runs")
    conv2 = _block(_EPYC, "conv").split("default threads, wall time")[-1]
    _check(_EPYC, "the settle's runs", [
        (off, ("the EPYC's two-thread conv lever row 'threads off', median",
               _cells(conv2, "threads off (OpenBLAS threads only)")[-1])),
        (on, ("the EPYC's two-thread default row, median", _cells(conv2, "all levers as set by default")[-1])),
        (step, ("the EPYC's step lever row 'threads', two threads", _row(_block(_EPYC, "step"), "threads")[5])),
    ])


def test_the_readmes_default_run_times_end_with_the_tables():
    """README.md: "the median of three runs has been 55 s, ..., 65 s and 66 s" on the EPYC, "medians of three
    21.3 s and 22.3 s" on the Xeon, "31 s ... (a median of three, 31.2 s)" on the AVX-512 EPYC, "the held-out
    mean IU is near 0.97 on all three", "the speed target, 45 s, is met on the Xeon and the AVX-512 EPYC,
    not on the AVX2 EPYC"."""
    epyc, xeon = _quote("../README.md", r"the median of three runs has been [\d s,]+ and (\d+) s, measured.*?medians of "
                                        r"three [\d.]+ s and ([\d.]+) s in two runs", "the default run's times")
    epyc_run, xeon_run = _block(_EPYC, "default-run"), _block(_XEON, "default-run")
    _check("README.md", "the default run's times", [
        (epyc, ("the EPYC's median run, rounded", f"{float(_cells(epyc_run, '**median**')[0].strip('*')):.0f}")),
        (xeon, ("the Xeon's median run", _cells(xeon_run, "**median**")[0].strip("*"))),
    ])
    assert ("the speed target, 45 s, is met on the Xeon and the AVX-512 EPYC, not on the AVX2 EPYC"
            in _prose("../README.md"))
    zen4 = _block(_ZEN4, "default-run")
    (third,) = _quote("../README.md", r"31 s on a quiet 2-core AMD EPYC with AVX-512 \(a median of three, ([\d.]+) s\)",
                      "the AVX-512 EPYC's default run")
    _check("README.md", "the AVX-512 EPYC's default run", [
        (third, ("its median run", _cells(zen4, "**median**")[0].strip("*")))])
    assert f"{float(third):.0f} s on a quiet 2-core AMD EPYC with AVX-512" in _prose("../README.md")
    assert "Target (<= 45 s for the median run, mean IU >= 0.95): met." in zen4
    assert "Target (<= 45 s for the median run, mean IU >= 0.95): met." in xeon_run
    assert "Target (<= 45 s for the median run, mean IU >= 0.95): not met." in epyc_run
    for run in (epyc_run, xeon_run, zen4):
        iu = float(_column(run, "`minisegnet train`", "run 1", "best held-out mean IU").split()[0])
        assert abs(iu - 0.97) <= 0.01, f"README.md: 'near 0.97' where a default-run table reads {iu}"


def test_every_quoted_benchmark_table_is_a_reliable_run():
    """benchmarks.md: "a table from a busy machine is marked UNRELIABLE; such a table is not a result": the
    sections whose figures the prose above quotes must each say **Reliable run.**"""
    for page, names in ((_EPYC, ["conv", "step", "threads", "processes", "default-run", "grid-sample", "augment"]),
                        (_XEON, ["conv", "step", "profile", "gemm", "default-run", "grid-sample", "augment",
                                 "threads", "processes"])):
        for name in names:
            block = _block(page, name)
            assert "**Reliable run.**" in block and "UNRELIABLE" not in block, \
                f"{page}, section {name}: marked UNRELIABLE (busy machine), yet the prose quotes its figures"


ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_fcn_md_quotes_its_table_2():
    """fcn.md, "Why FCN-8s beats FCN-32s": "The big step is 32s -> 16s (+A mean IU); 16s -> 8s
    gives only +B, ... Pixel accuracy moves least (C -> D)": differences of the page's Table 2."""
    text = (DOCS / "fcn.md").read_text()
    rows = {}
    for line in text.split("## The model in this library")[0].splitlines():
        if line.startswith("| FCN-"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = [float(c) for c in cells[1:]]
    assert set(rows) == {"FCN-32s", "FCN-16s", "FCN-8s"}
    prose = " ".join(text.split())
    quoted = re.search(r"32s -> 16s \(\+([\d.]+) mean IU\); 16s -> 8s gives only \+([\d.]+),.*?"
                       r"Pixel accuracy moves least \(([\d.]+) -> ([\d.]+)\)", prose)
    assert quoted, "the sentence quoting Table 2 has changed: update this test"
    big, small, first, last = (float(g) for g in quoted.groups())
    iu = {name: cells[2] for name, cells in rows.items()}
    assert big == round(iu["FCN-16s"] - iu["FCN-32s"], 1) and small == round(iu["FCN-8s"] - iu["FCN-16s"], 1)
    assert (first, last) == (rows["FCN-32s"][0], rows["FCN-8s"][0])
    moves = [round(rows["FCN-8s"][k] - rows["FCN-32s"][k], 1) for k in range(4)]
    assert moves[0] == min(moves) and moves[2] == max(moves)          # pixel accuracy least, mean IU most


ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_property_testing_md_example_counts_are_the_profiles():
    """property-testing.md, "The shape of a property test": "`quick`, 20 examples (the default),
    or `ci`, 60 (with `CI=true` or `HYPOTHESIS_PROFILE=ci`) ... ask for 300": the profiles
    tests/conftest.py registers, and tests/test_shapes.py's own settings."""
    prose = " ".join((DOCS / "property-testing.md").read_text().split())
    quoted = re.search(r"`quick`, (\d+) examples \(the default\), or `ci`, (\d+) \(with `CI=true` or "
                       r"`HYPOTHESIS_PROFILE=ci`\)\. The pure-integer properties in .*? ask for (\d+) with their own `@settings`\.", prose)
    assert quoted, "the sentence quoting the Hypothesis profiles has changed: update this test"
    import test_shapes                       # tests/ is on sys.path (conftest imports cupy_standin from there)
    assert [int(n) for n in quoted.groups()] == [settings.get_profile("quick").max_examples,
                                                 settings.get_profile("ci").max_examples,
                                                 test_shapes.many.max_examples]
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    assert '"ci" if _in_ci else "quick"' in conftest       # quick is the default, ci under CI=true



def test_benchmarks_md_a_third_machine_quotes_its_tables():
    """benchmarks.md, "A third machine": "The default run takes A s there (the median of three: B, C and D
    s), with a held-out mean IU of E"; "The step is Fx PyTorch's at one thread and Gx at two there
    (PyTorch's own step H and I ms) ...; two processes bring it to Jx"; "(K against L ms a step, ...) and
    still take Mx PyTorch's whole step"; "fixed cost ... N ms there against PyTorch's O"; "grid_sample ...
    Px PyTorch at one thread and Qx at two there"."""
    q = _quote(_EPYC, r"A third machine.*?The default run\*\* takes ([\d.]+) s there \(the median of three: ([\d.]+), "
                      r"([\d.]+) and ([\d.]+) s\), with a held-out mean IU of ([\d.]+):.*?The step\*\* is ([\d.]+)x "
                      r"PyTorch's at one thread and ([\d.]+)x at two there \(PyTorch's own step ([\d.]+) and ([\d.]+) "
                      r"ms\).*?two processes bring it to ([\d.]+)x.*?\(([\d.]+) against ([\d.]+) ms a step.*?still "
                      r"take ([\d.]+)x PyTorch's whole step.*?one 8x8 image is ([\d.]+) ms there against PyTorch's "
                      r"([\d.]+) .*?\(4, 3, 256, 256\) is ([\d.]+)x PyTorch at one thread and ([\d.]+)x at two there",
               "the third machine's tables")
    run, step, gemm = _block(_ZEN4, "default-run"), _block(_ZEN4, "step"), _block(_ZEN4, "gemm")
    row, one, two = "U-Net step, batch 8, 3x64x64", "1 thread, CPU time", "default threads, wall time"
    s1, s2 = _cells(step, row, one), _cells(step, row, two)
    total = _cells(gemm, "**all of the step's products**")
    fixed = re.search(r"Fixed cost of a step \(the same network on one 8x8 image\): ours ([\d.]+) ms, torch ([\d.]+) ms",
                      _block(_ZEN4, "profile").split("#### default threads")[0]).groups()
    processes = _cells(_block(_ZEN4, "processes"), "the step benchmark's U-Net (base 16, depth 2, SGD)",
                       "ours, two processes of one thread (4 images each)")
    grid = _block(_ZEN4, "grid-sample").split("With BLOCK_ELEMENTS")[0]
    g1, g2 = _cells(grid, "(4, 3, 256, 256)", one), _cells(grid, "(4, 3, 256, 256)", two)
    _check(_EPYC, "A third machine", list(zip(q, [
        ("its median run", _cells(run, "**median**")[0].strip("*")),
        ("its run 1", _cells(run, "run 1")[0]), ("its run 2", _cells(run, "run 2")[0]),
        ("its run 3", _cells(run, "run 3")[0]),
        ("its best mean IU", _column(run, "`minisegnet train`", "run 2", "best held-out mean IU").split()[0]),
        ("its one-thread step ratio", s1[2]), ("its two-thread step ratio", s2[2]),
        ("PyTorch's one-thread step", s1[1]), ("PyTorch's two-thread step", s2[1]),
        ("its two-process step / PyTorch", processes[1]),
        ("its gemm table's NumPy total", total[1].strip("*")), ("its PyTorch total", total[2].strip("*")),
        ("its gemm table's last line", re.search(r"alone take ([\d.]+)x PyTorch's whole step", gemm).group(1)),
        ("its one-thread fixed cost, ours", fixed[0]), ("its fixed cost, torch", fixed[1]),
        ("its one-thread grid_sample fwd+bwd ratio", g1[5]), ("its two-thread grid_sample fwd+bwd ratio", g2[5]),
    ])))
    assert "Target (<= 45 s for the median run, mean IU >= 0.95): met." in run
    for name in ("conv", "step", "profile", "gemm", "default-run", "grid-sample", "processes"):
        block = _block(_ZEN4, name)
        assert "**Reliable run.**" in block and "UNRELIABLE" not in block, f"{_ZEN4}, section {name}: not reliable"
