"""What a second process buys the training step, against a second thread and PyTorch.

    python benchmarks/bench_processes.py           # the table
    python benchmarks/bench_processes.py --quick   # a smoke run, not a measurement

minisegnet's thread pool gains little from a second core, because its
threads overlap only inside NumPy's loops and hand the interpreter lock back
and forth between them (docs/performance.md, "Using both cores";
``bench_threads.py`` measures it). Processes have one interpreter each.
``minisegnet/data_parallel.py`` shares a step between processes, each on a
slice of the batch (data parallelism); this script times it against the
same step on one and two threads, and against PyTorch.

Two networks, each on a batch of 8 images of 64x64: the U-Net of the step
benchmark (``bench_train_step.py``: base 16, depth 2, SGD with momentum) and
``minisegnet train``'s default (base 8, depth 3, Adam). A step is forward,
loss, backward and the optimizer's update. In every round, in alternating
order:

* ours, one thread, the whole batch;
* ours, two threads (the pool, OpenBLAS beside it), the whole batch;
* ours, two processes of one thread (``DataParallel``: this process and a
  worker, four images each, the weights sent and the gradients and outputs
  brought back every step, through shared memory: ``array_pipe.py``);
* the same with every array pickled through the pipe (``shared_memory=False``):
  what the shared memory buys (a third table compares the two on larger
  U-Nets, whose weights are megabytes);
* PyTorch, two threads, the whole batch.

Wall time; medians over the rounds and their interquartile ranges.

A second table times the held-out pass the trainer runs after each epoch on
the default network: 64 images of 64x64 in batches of 8, forward only, in
eval mode, without gradients; ours on two threads (the pool), ours shared by
two processes (``DataParallel.forward``: the weights and a slice out, the
outputs back), and PyTorch on two threads.
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_train_step  # noqa: E402
import timing  # noqa: E402

BATCH, SIZE = 8, 64
MODELS = {"bench": "the step benchmark's U-Net (base 16, depth 2, SGD)",
          "default": "minisegnet train's U-Net (base 8, depth 3, Adam)"}


def loss_of(model, images, targets):
    """The step's forward and loss, as ``DataParallel`` calls it (module-level: a worker imports it)."""
    import minisegnet as msn
    from minisegnet import functional as F

    outputs = model(msn.tensor(images))
    return outputs, F.cross_entropy(outputs, msn.tensor(targets))


def cell(values):
    """``(median, "median (q1-q3)")`` in milliseconds."""
    q1, median, q3 = statistics.quantiles([1e3 * v for v in values], n=4, method="inclusive")
    return median, f"{median:.1f} ({q1:.1f}-{q3:.1f})"


def measure(rounds, model="default"):
    """Seconds per step of network ``model`` for each configuration, ``rounds`` values each
    (see the module docstring)."""
    from minisegnet import data_parallel

    ours, theirs, opt, topt, x, y = bench_train_step.build_pair(BATCH, SIZE, model=model)
    ours_step, torch_step = bench_train_step.step_functions(ours, theirs, opt, topt, x, y)
    results = {"ours, one thread": [], "ours, two threads": [], "ours, two processes": [],
               "ours, two processes, plain pipe": [], "torch, two threads": []}
    with data_parallel.DataParallel(ours, loss_of, 2) as shared, \
            data_parallel.DataParallel(ours, loss_of, 2, shared_memory=False) as piped:
        def processes_step(stepper):
            stepper.step(x, y)
            opt.step()
        steps = {"ours, one thread": (1, ours_step), "ours, two threads": (2, ours_step),
                 "ours, two processes": (None, lambda: processes_step(shared)),
                 "ours, two processes, plain pipe": (None, lambda: processes_step(piped)),
                 "torch, two threads": (2, torch_step)}
        for threads, step in steps.values():            # warm up
            with timing.threads(threads):
                step(), step()
        for r in range(rounds):
            for name in (list(results) if r % 2 else list(reversed(results))):
                threads, step = steps[name]
                with timing.threads(threads):
                    step()                              # a new thread count: warm its pool untimed
                    results[name].append(timing.time_once(step))
    return results


def torch_scaling():
    """PyTorch's step of the default network at one thread and at two (``timing.torch_scaling``),
    or None where PyTorch has one thread only."""
    import torch

    if torch.get_num_threads() < 2:
        return None
    ours, theirs, opt, topt, x, y = bench_train_step.build_pair(BATCH, SIZE, model="default")
    return timing.torch_scaling(bench_train_step.step_functions(ours, theirs, opt, topt, x, y)[1], 2)


LARGER = ((16, 4), (32, 4))      # (base channels, depth) of the larger U-Nets of the third table


def measure_shared_memory(rounds):
    """Seconds per two-process step of larger U-Nets (``LARGER``; SGD, batch ``BATCH``), the arrays
    through shared memory and through the pipe, ``rounds`` values each: ``{(base, depth): (parameters,
    {"shared": [...], "pipe": [...]})}``."""
    import numpy as np

    import minisegnet as msn
    from minisegnet import data_parallel
    from minisegnet.models import UNet

    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 3, SIZE, SIZE), dtype=np.float32)
    y = rng.integers(0, 4, (BATCH, SIZE, SIZE))
    out = {}
    for base, depth in LARGER:
        msn.manual_seed(0)
        model = UNet(3, 4, base_channels=base, depth=depth, padding="same")
        opt = msn.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        times = {"shared": [], "pipe": []}
        with data_parallel.DataParallel(model, loss_of, 2) as shared, \
                data_parallel.DataParallel(model, loss_of, 2, shared_memory=False) as piped:
            steppers = {"shared": shared, "pipe": piped}

            def step(way):
                steppers[way].step(x, y)
                opt.step()
            for way in times:                              # warm up
                step(way)
            for r in range(rounds):
                for way in (list(times) if r % 2 else list(reversed(times))):
                    times[way].append(timing.time_once(lambda: step(way)))
        out[base, depth] = sum(p.data.size for p in model.parameters()), times
    return out


EVAL_IMAGES = 64


def measure_held_out(rounds):
    """Seconds per held-out pass (see the module docstring), ``rounds`` values per configuration."""
    import numpy as np
    import torch

    import minisegnet as msn
    from minisegnet import data_parallel

    ours, theirs, _, _, _, _ = bench_train_step.build_pair(BATCH, SIZE, model="default")
    images = np.random.default_rng(0).random((EVAL_IMAGES, 3, SIZE, SIZE), dtype=np.float32)
    batches = [images[i:i + BATCH] for i in range(0, EVAL_IMAGES, BATCH)]
    ours.eval()
    theirs.eval()

    def ours_pass():
        with msn.no_grad():
            for batch in batches:
                ours(msn.as_tensor(batch))

    def torch_pass():
        with torch.no_grad():
            for batch in batches:
                theirs(torch.from_numpy(batch))

    results = {"ours, two threads": [], "ours, two processes": [], "torch, two threads": []}
    with data_parallel.DataParallel(ours, loss_of, 2) as shared:
        def processes_pass():
            for batch in batches:
                shared.forward(batch)
        passes = {"ours, two threads": (2, ours_pass), "ours, two processes": (None, processes_pass),
                  "torch, two threads": (2, torch_pass)}
        for threads, run in passes.values():             # warm up
            with timing.threads(threads):
                run()
        for r in range(rounds):
            for name in (list(results) if r % 2 else list(reversed(results))):
                threads, run = passes[name]
                with timing.threads(threads):
                    results[name].append(timing.time_once(run))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three rounds: a smoke run")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15
    from minisegnet import allocator

    allocator.keep_freed_memory()          # as minisegnet train does; it holds for PyTorch too, in this process
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    results = {model: measure(rounds, model) for model in MODELS}
    held_out = measure_held_out(rounds)
    larger = measure_shared_memory(max(3, rounds * 3 // 5))
    scaling = torch_scaling()              # every figure is against PyTorch at two threads: did they pay?
    load = monitor.stop()                  # after the workers exited: their CPU time counts as this run's
    reasons = timing.verdict(load, scaling)
    print(timing.report_header(
        info, load, reasons,
        f"Batch {BATCH} of 3x{SIZE}x{SIZE}; a step is forward, loss, backward and update; wall time, "
        f"{rounds} interleaved rounds."
        + ("" if scaling is None else f" PyTorch's step alone: {1e3 * scaling[0]:.1f} ms at one thread, "
                                      f"{1e3 * scaling[1]:.1f} ms at two (wall).")) + "\n")
    labels = {"ours, one thread": "ours, one thread",
              "ours, two threads": "ours, two threads (the pool)",
              "ours, two processes": f"ours, two processes of one thread ({BATCH // 2} images each)",
              "ours, two processes, plain pipe": "the same, every array through the pipe "
                                                 "(shared_memory=False)",
              "torch, two threads": "PyTorch, two threads"}
    rows, result = [], {}
    for model, network in MODELS.items():
        torch_ms, _ = cell(results[model]["torch, two threads"])
        for name, label in labels.items():
            median, text = cell(results[model][name])
            rows.append([network, label, text, f"{median / torch_ms:.2f}"])
        result[model] = {name.replace(", ", "_").replace(" ", "_"): cell(times)[0]
                         for name, times in results[model].items()}
        result[model]["processes_ratio"] = result[model]["ours_two_processes"] / torch_ms
    print(timing.markdown_table(["network", "step", "ms, median (interquartile range)",
                                 "/ PyTorch at two threads"], rows, reasons))
    print(f"\nThe held-out pass of {MODELS['default']}: {EVAL_IMAGES} images in batches of {BATCH}, "
          "eval mode, no gradients.\n")
    torch_ms, _ = cell(held_out["torch, two threads"])
    rows = []
    for name, label in (("ours, two threads", "ours, two threads (the pool)"),
                        ("ours, two processes", f"ours, two processes ({BATCH // 2} images each)"),
                        ("torch, two threads", "PyTorch, two threads")):
        median, text = cell(held_out[name])
        rows.append([label, text, f"{median / torch_ms:.2f}"])
    print(timing.markdown_table(["held-out pass", "ms, median (interquartile range)", "/ PyTorch at two threads"],
                                rows, reasons))
    result["held_out"] = {name.replace(", ", "_").replace(" ", "_"): cell(times)[0]
                          for name, times in held_out.items()}
    print(f"\nWhat shared memory buys as the weights grow: the two-process step of larger U-Nets (SGD, "
          f"batch {BATCH} of 3x{SIZE}x{SIZE}), the arrays through shared memory or every array pickled "
          "through the pipe, interleaved.\n")
    rows = []
    for (base, depth), (parameters, times) in larger.items():
        shared_ms, shared_text = cell(times["shared"])
        pipe_ms, pipe_text = cell(times["pipe"])
        rows.append([f"U-Net base {base}, depth {depth} ({parameters / 1e6:.1f} M parameters, "
                     f"{4 * parameters / 2**20:.0f} MiB of weights)", shared_text, pipe_text,
                     f"{pipe_ms / shared_ms:.2f}"])
        result[f"unet_{base}_{depth}"] = dict(parameters=parameters, shared=shared_ms, pipe=pipe_ms)
    print(timing.markdown_table(["network", "shared memory, ms", "through the pipe, ms", "pipe / shared"],
                                rows, reasons))
    print(timing.result_line(result, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
