"""Re-measure every table and figure of docs/benchmarks.md, and rewrite them there.

Run it on a quiet machine (nothing else running; it checks, and marks every
table from a busy machine UNRELIABLE). Before each section it waits (up to
five minutes) for the load average left by the previous one to settle:

    python benchmarks/run_all.py             # about 25-30 minutes on 2 cores, waits included; rewrites docs/benchmarks.md
    python benchmarks/run_all.py --dry-run   # the same, but only prints the sections
    python benchmarks/run_all.py --quick     # smoke run of every script (prints, writes nothing)
    python benchmarks/run_all.py --only step,default-run
    python benchmarks/run_all.py --page docs/benchmarks-other.md   # another machine's tables on a page of their own

``--page`` keeps a second machine's figures apart from the first's: the page
(made, with every section's markers, if it does not exist) holds the tables
alone, and the scaling figure goes beside the page's name in docs/measured/.

Each section of docs/benchmarks.md between ``<!-- BEGIN run_all: NAME -->``
and ``<!-- END run_all: NAME -->`` is the output of one script, run in a
fresh process:

    conv         bench_conv.py --levers --memory   layers a-k, both regimes, levers, memory
    step         bench_train_step.py --levers      the U-Net step, both regimes, levers, peak RSS
    profile      profile_step.py                   where the step's time goes, ours and PyTorch's
    gemm         bench_gemm.py                     the step's matrix products in NumPy and in PyTorch
    scaling      bench_scaling.py                  step time against batch and image size (+ figure)
    default-run  bench_default_run.py --levers     `minisegnet train` with no arguments (+ the allocator lever)
    grid-sample  bench_grid_sample.py --levers     F.grid_sample against PyTorch's
    augment      bench_augment.py                  what the augmentations add to an epoch
    threads      bench_threads.py                  what a second thread buys NumPy work in the pool
    processes    bench_processes.py                what a second process buys the step (data parallelism)
    winograd     try_winograd.py                   a lever tried and not kept, against im2col and PyTorch
    summary      (written here)                    every target, measured against its figure

The text between the sections explains the tables and is not rewritten;
it states no figure that a section does not show.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "benchmarks.md")

SECTIONS = {
    "conv": ["bench_conv.py", "--levers", "--memory"],
    "step": ["bench_train_step.py", "--levers"],
    "profile": ["profile_step.py"],
    "gemm": ["bench_gemm.py"],
    "scaling": ["bench_scaling.py"],
    "default-run": ["bench_default_run.py", "--levers"],
    "grid-sample": ["bench_grid_sample.py", "--levers"],
    "augment": ["bench_augment.py"],
    "threads": ["bench_threads.py"],
    "processes": ["bench_processes.py"],
    "winograd": ["try_winograd.py"],
}
QUICK = {
    "conv": ["--quick", "--layers", "ab"],
    "step": ["--quick", "--no-memory"],
    "profile": ["--quick"],
    "gemm": ["--quick"],
    "scaling": ["--quick", "--figure", os.path.join(os.sep, "tmp", "bench_scaling_quick.png")],
    "default-run": ["--runs", "1", "--lever-pairs", "1", "--", "--epochs", "1", "--num-train", "32", "--num-val", "16"],
    "grid-sample": ["--quick"],
    "augment": ["--quick"],
    "threads": ["--quick"],
    "processes": ["--quick"],
    "winograd": ["--quick"],
}
RESULT = re.compile(r"\n?<!-- result: (.*) -->\s*$")


def wait_for_quiet(limit_s=300, poll_s=5):
    """Wait until the 1-minute load average falls well below ``timing.BUSY_LOAD``: the
    previous section's own work keeps it high for a minute or two (it decays with
    a one-minute time constant), and each script marks its run busy when the load
    was high before it started. Gives up after ``limit_s`` seconds (the script then
    measures, and marks its tables busy); returns the seconds waited."""
    sys.path.insert(0, HERE)
    import timing

    start = time.perf_counter()
    # Below 0.6 of the threshold: the script's own start (imports, building the models,
    # the parity check) runs for several seconds before it reads the load average.
    while (timing._load_average() or 0.0) >= 0.6 * timing.BUSY_LOAD and time.perf_counter() - start < limit_s:
        time.sleep(poll_s)
    return time.perf_counter() - start


def run_section(name, quick, page=DOC):
    command = [sys.executable, os.path.join(HERE, SECTIONS[name][0])] + SECTIONS[name][1:]
    if quick:
        command = command[:2] + QUICK[name]
    elif name == "scaling" and page != DOC:          # the other page's figure, not this page's
        stem = os.path.splitext(os.path.basename(page))[0]
        command += ["--figure", os.path.join(ROOT, "docs", "measured", f"step_scaling-{stem}.png")]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 3):            # 3: finished, but the machine was busy
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    text = proc.stdout.rstrip()
    match = RESULT.search(text)
    result = json.loads(match.group(1)) if match else {}
    if match:
        text = text[:match.start()].rstrip()
    if proc.returncode == 3:                     # (a script without a result line says it so alone)
        result = dict(result, reliable=False)
    return text, result, seconds


def check(label, value, limit, reliable, lower_is_better=True):
    if value is None:
        return [label, "not measured", "", ""]
    met = value <= limit if lower_is_better else value >= limit
    verdict = ("met" if met else "not met") + ("" if reliable else " (busy machine: not a result)")
    return [label, f"{value:.2f}", ("<= " if lower_is_better else ">= ") + f"{limit:g}", verdict]


def summary(results):
    sys.path.insert(0, HERE)
    import timing

    rows = []
    step, conv, run = results.get("step", {}), results.get("conv", {}), results.get("default-run", {})
    if step:
        ok = step.get("reliable", False)
        rows.append(check("U-Net step, default threads (2 here), ours / torch", step.get("default", {}).get("ratio"),
                          1.5, ok))
        rows.append(check("U-Net step, one thread, ours / torch", step.get("one", {}).get("ratio"), 1.2, ok))
        rss = step.get("peak_rss_mib")
        if rss:
            rows.append(check("peak RSS, ours / torch", rss["ours"] / rss["torch"], 1.0, ok))
    processes = results.get("processes", {})
    if processes.get("bench"):
        rows.append(check("U-Net step, two processes (data parallelism), ours / torch at two threads",
                          processes["bench"]["processes_ratio"], 1.5, processes.get("reliable", False)))
    if conv:
        ok = conv.get("reliable", False)
        for regime, label in (("default", "default threads"), ("one", "one thread")):
            if regime in conv:
                rows.append(check(f"stride-1 conv forward, median ratio, {label}",
                                  conv[regime]["stride1_fwd_median"], 1.5, ok))
                rows.append(check(f"conv forward+backward, median ratio, {label}", conv[regime]["fwd_bwd_median"],
                                  1.0, ok))
    if run and not run.get("extra"):
        ok = run.get("reliable", False)
        rows.append(check("`minisegnet train` (default run), seconds, median run", run["seconds"], 45, ok))
        rows.append(check("default run, best held-out mean IU", run["mean_iou"], 0.95, ok, lower_is_better=False))
    return timing.markdown_table(["target", "measured", "target", "verdict"], rows)


def stored_results(page=DOC):
    """The figures each section of the page was last written with (its ``result`` comment)."""
    if not os.path.exists(page):
        return {}
    with open(page) as f:
        doc = f.read()
    found = {}
    for name in SECTIONS:
        section = re.search(rf"<!-- BEGIN run_all: {name} -->(.*?)<!-- END run_all: {name} -->", doc, re.S)
        match = RESULT.search(section.group(1).rstrip()) if section else None
        if match:
            found[name] = json.loads(match.group(1))
    return found


def new_page(path):
    """A page for another machine's tables: a heading and every section's markers, empty."""
    title = os.path.splitext(os.path.basename(path))[0]
    parts = [f"# {title}\n\nEvery table on this page is written by `python benchmarks/run_all.py --page "
             f"{os.path.relpath(path, ROOT)}` on one machine (each section's first line names it). What the "
             "tables measure, and how, is explained on [benchmarks.md](benchmarks.md), whose tables come "
             "from another machine; this page holds the tables alone.\n"]
    for name in ["summary", *SECTIONS]:
        parts.append(f"## {name}\n\n<!-- BEGIN run_all: {name} -->\n(not measured yet)\n<!-- END run_all: {name} -->\n")
    return "\n".join(parts)


def rewrite(doc, name, text, page=DOC):
    begin, end = f"<!-- BEGIN run_all: {name} -->", f"<!-- END run_all: {name} -->"
    if begin not in doc or end not in doc:
        raise SystemExit(f"{page} has no {begin} ... {end} markers")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{text}\n{end}{tail}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated sections (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the sections, do not rewrite the page")
    parser.add_argument("--quick", action="store_true", help="smoke-run every script; implies --dry-run")
    parser.add_argument("--page", default=DOC, help="the page to rewrite (default docs/benchmarks.md; made "
                                                    "if missing): another machine's tables on a page of their own")
    args = parser.parse_args(argv)
    page = os.path.abspath(args.page)
    names = list(SECTIONS) if not args.only else [n.strip() for n in args.only.split(",")]
    for name in names:
        if name not in SECTIONS:
            raise SystemExit(f"unknown section {name!r}; the sections are {', '.join(SECTIONS)}")
    outputs, results, started = {}, {}, time.perf_counter()
    for name in names:
        waited = 0.0 if args.quick else wait_for_quiet()
        print(f"running {name} (after {waited:.0f} s waiting for the load to settle) ...", file=sys.stderr,
              flush=True)
        text, result, seconds = run_section(name, args.quick, page)
        # the section keeps its figures for the summary as a comment, so that a later
        # partial run (--only) can rebuild the summary from every section's latest run
        outputs[name] = text + (f"\n<!-- result: {json.dumps(result)} -->" if result else "")
        results[name] = result
        flag = "" if result.get("reliable", True) else "  (UNRELIABLE: busy machine)"
        print(f"  {name}: {seconds:.0f} s{flag}", file=sys.stderr, flush=True)
    if {"step", "conv", "default-run", "processes"} & set(names):
        outputs["summary"] = summary({**stored_results(page), **results})
    total = time.perf_counter() - started
    if args.dry_run or args.quick:
        for name, text in outputs.items():
            print(f"\n<!-- BEGIN run_all: {name} -->\n{text}\n<!-- END run_all: {name} -->")
    else:
        if os.path.exists(page):
            with open(page) as f:
                doc = f.read()
        else:
            doc = new_page(page)
        for name, text in outputs.items():
            doc = rewrite(doc, name, text, page)
        tmp = page + ".tmp"
        with open(tmp, "w") as f:
            f.write(doc)
        os.replace(tmp, page)
        print(f"rewrote {', '.join(outputs)} in {os.path.relpath(page, ROOT)}", file=sys.stderr)
    unreliable = [n for n, r in results.items() if not r.get("reliable", True)]
    print(f"done in {total / 60:.1f} min" + (f"; UNRELIABLE (busy machine): {', '.join(unreliable)}"
                                             if unreliable else "; every run reliable"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
