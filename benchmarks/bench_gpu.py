"""minisegnet on CuPy against PyTorch CUDA, one process, float32: speed, peak GPU memory, first-step cost.

    python benchmarks/bench_gpu.py                    # on a machine with a GPU, CuPy and torch CUDA
    python benchmarks/bench_gpu.py --json out.json    # also write every figure as JSON
    python benchmarks/bench_gpu.py --dry-run          # tiny sizes, 1 repeat: checks the script runs
                                                      # (on the CPU stand-in for CuPy if there is no GPU)

What is measured, ours and torch's interleaved (``benchmarks/timing.py``), each
call ending with a device synchronisation, medians and ratios (ours / torch):

1. **First steps** of the U-Net of ``bench_train_step.py``, before anything
   else ran in the process: CuPy compiles each elementwise and reduction kernel
   at its first use (cached on disk in ``CUPY_CACHE_DIR`` afterwards), so the
   first step pays for compilation; torch's pays for its lazy CUDA set-up.
2. **Conv layers** a-k of ``bench_conv.py``: forward, and forward + backward.
3. **Training steps**: the U-Net of ``bench_train_step.py`` (base 16, depth 2,
   batch 8, 64x64) and a larger one (base 32, depth 4, batch 8, 256x256):
   forward, cross-entropy, backward, SGD with momentum.
4. **Levers**: both U-Nets' steps with each CuPy-only lever of
   ``functional/conv_fast.py`` (``LEVERS``) switched off, and with NumPy's
   smaller im2col limit, against the defaults, interleaved, with peak memory; and,
   with ``--profile FILE``, where the host's time goes in the small U-Net's
   step (cProfile of a few synchronised steps).

Peak GPU memory is the most memory allocated at once during one (warm) call:
torch's ``max_memory_allocated``, and for CuPy the same quantity counted with a
memory hook (bytes handed out by the pool minus bytes returned), both measured
from what was already allocated before the call (the model, the optimizer state
and the inputs count, as they must stay on the GPU).

Targets (issue): U-Net step <= 2x torch CUDA, conv per-layer median <= 1.5x,
peak memory <= 1.5x.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

from timing import compare, im2col_limit_set, lever_set, markdown_table  # noqa: E402

TARGETS = {"unet_step": 2.0, "conv_median": 1.5, "memory": 1.5}
# conv_fast's levers that act on CuPy only (the CPU benchmarks switch the others)
LEVERS = ["window", "one_gemm"]
OTHER_LIMIT = 32 * 2**20    # NumPy's im2col limit, tried against CuPy's default (256 MiB)


# ---- the two devices ------------------------------------------------------------------------
def import_cupy(allow_standin):
    """Real CuPy with a GPU, or (``allow_standin``) the CPU stand-in from tests/cupy_standin."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy, False
    except Exception as exc:        # not installed, or no GPU
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "no GPU"
    if not allow_standin:
        raise SystemExit(f"bench_gpu: CuPy with a GPU is needed ({reason}); --dry-run uses the CPU stand-in")
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import cupy_standin
    return cupy_standin.install(), True


def torch_cuda():
    """torch and "cuda", or torch and None when torch has no GPU here (its columns are skipped)."""
    import torch
    return torch, ("cuda" if torch.cuda.is_available() else None)


def describe_machine(cupy, standin, torch, device):
    if standin:
        gpu = "no GPU: CuPy is the CPU stand-in (a dry run, not a measurement)"
    else:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        gpu = (f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB; CUDA runtime "
               f"{cupy.cuda.runtime.runtimeGetVersion()}, driver {cupy.cuda.runtime.driverGetVersion()}")
    torch_part = f"torch {torch.__version__}" + (f" on {torch.cuda.get_device_name(0)}" if device else
                                                  " without CUDA (torch columns skipped)")
    return f"{gpu}; CuPy {cupy.__version__}; NumPy {np.__version__}; {torch_part}"


# ---- peak memory ----------------------------------------------------------------------------
class CupyPeak:
    """Peak bytes in use in CuPy's memory pool during a block (a CuPy memory hook)."""

    def __init__(self, cupy):
        self.cupy = cupy
        base = cupy.cuda.MemoryHook

        class Hook(base):
            name = "minisegnet_peak"

            def __init__(hook):
                hook.now = hook.peak = 0

            def malloc_postprocess(hook, **kw):
                hook.now += kw["mem_size"]
                hook.peak = max(hook.peak, hook.now)

            def free_postprocess(hook, **kw):
                hook.now -= kw["mem_size"]

        self.hook = Hook()

    def measure(self, fn):
        """Run ``fn()``; return the peak bytes in use above what was in use before (MiB)."""
        self.hook.now = self.hook.peak = 0
        with self.hook:
            fn()
        return self.hook.peak / 2**20


def torch_peak(torch, fn):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


# ---- workloads --------------------------------------------------------------------------------
def unet_step_pair(cupy, torch, device, base, depth, batch, size, seed=0):
    """(ours_step, torch_step or None): one SGD training step each, same initial weights."""
    import minisegnet as msn
    from minisegnet import functional as F
    from minisegnet.export import to_torch
    from minisegnet.models import UNet

    msn.set_backend("cupy")
    msn.manual_seed(seed)
    ours = UNet(3, 4, base_channels=base, depth=depth, padding="same")
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, 4, (batch, size, size))
    xo, yo = msn.tensor(x), msn.tensor(y)
    opt = msn.optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    sync = cupy.cuda.Device().synchronize

    def ours_step():
        loss = F.cross_entropy(ours(xo), yo)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()

    if device is None:
        return ours_step, None
    theirs = to_torch(ours).to(device)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def torch_step():
        loss = torch.nn.functional.cross_entropy(theirs(xt), yt)
        topt.zero_grad()
        loss.backward()
        topt.step()
        torch.cuda.synchronize()

    return ours_step, torch_step


def conv_layer_pair(cupy, torch, device, spec):
    """bench_conv's layer on the GPU: (ours_fwd, torch_fwd, ours_step, torch_step)."""
    import minisegnet as msn
    from bench_conv import make_layer

    msn.set_backend("cupy")
    return make_layer(spec, torch, device or "cpu", cupy)


def shrink(spec):
    """A dry run's version of a conv layer: batch 1, a quarter of the size."""
    return (1,) + tuple(spec[1:2]) + (max(spec[2] // 4, 8), max(spec[3] // 4, 8)) + tuple(spec[4:])


# ---- the report ---------------------------------------------------------------------------------
def timed(ours, theirs, repeats, warmup):
    if theirs is None:
        samples = []
        for _ in range(warmup):
            ours()
        for _ in range(repeats):
            start = time.perf_counter()
            ours()
            samples.append(time.perf_counter() - start)
        return {"ours": statistics.median(samples), "theirs": None, "ratio": None}
    result = compare(ours, theirs, repeats, warmup)
    return {k: result[k] for k in ("ours", "theirs", "ratio", "spread")}


def ms(value):
    return "-" if value is None else f"{value * 1e3:.2f}"


def ratio(value):
    return "-" if value is None else f"{value:.2f}"


def first_steps(cupy, torch, device, dry):
    """Seconds of the first and the second step, ours then torch's, in a process that ran nothing yet."""
    ours, theirs = unet_step_pair(cupy, torch, device, 16, 2, 2 if dry else 8, 16 if dry else 64)
    out = {}
    for name, fn in (("ours", ours), ("torch", theirs)):
        if fn is None:
            continue
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[name] = {"first_s": times[0], "second_s": times[1], "third_s": times[2]}
    return out


def _switched(step, setting):
    """``step`` run inside ``setting()``, a context that changes one setting for the block."""
    def run():
        with setting():
            step()
    return run


def lever_rows(cupy, repeats, warmup, dry, nets, peak):
    """Our steps with each of ``LEVERS`` off, and with NumPy's smaller im2col limit
    (``OTHER_LIMIT``), against the defaults, interleaved; peak memory of each."""
    rows, out = [], {}
    for label, (base, depth, batch, size) in nets.items():
        if dry:
            batch, size = 1, 32
        step, _ = unet_step_pair(cupy, None, None, base, depth, batch, size)
        variants = [(f"{name} off", _switched(step, lambda name=name: lever_set(name, False))) for name in LEVERS]
        variants.append((f"im2col limit {OTHER_LIMIT >> 20} MiB",
                         _switched(step, lambda: im2col_limit_set(OTHER_LIMIT))))
        step()                                  # warm, as every variant is when its peak is measured
        mem_on = peak.measure(step)
        for what, variant in variants:
            t = compare(variant, step, max(repeats // 2, 1), warmup)
            mem = peak.measure(variant)
            out[f"{label}: {what}"] = {"variant_s": t["ours"], "default_s": t["theirs"], "ratio": t["ratio"],
                                        "peak_mib": mem, "default_peak_mib": mem_on}
            rows.append([label, what, ms(t["theirs"]), ms(t["ours"]), ratio(t["ratio"]), f"{mem_on:.0f}",
                         f"{mem:.0f}"])
    print("\nLevers: our steps with one setting changed, interleaved with the defaults\n")
    print(markdown_table(["model", "setting", "default ms", "changed ms", "changed / default",
                          "default peak MiB", "changed peak MiB"], rows))
    return out


def profile_step(cupy, dry, path, steps=5):
    """cProfile of ``steps`` synchronised steps of the small U-Net, by own time, to ``path``."""
    import cProfile
    import io
    import pstats

    step, _ = unet_step_pair(cupy, None, None, 16, 2, 1 if dry else 8, 32 if dry else 64)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(60)
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
    with open(path, "w") as f:
        f.write(f"cProfile of {steps} steps (each ending with a device synchronisation)\n" + text.getvalue())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny sizes, 1 repeat; runs on the CPU stand-in without a GPU (not a measurement)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--layers", default="abcdefghijk")
    parser.add_argument("--skip-large", action="store_true", help="leave out the base-32 depth-4 U-Net")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--profile", help="write a cProfile of the small U-Net's step (by own time) to this file")
    args = parser.parse_args()
    dry = args.dry_run
    repeats, warmup = (1, 1) if dry else (args.repeats, 3)

    cupy, standin = import_cupy(allow_standin=dry)
    torch, device = torch_cuda()
    machine = describe_machine(cupy, standin, torch, device)
    print(f"{machine}\n{repeats} interleaved repeats after {warmup} warm-up pairs, medians of wall time, "
          "each call ending with a device synchronisation; ratio = ours / torch (lower is better)\n")
    results = {"machine": machine, "dry_run": dry, "cupy_cache_dir": os.environ.get("CUPY_CACHE_DIR")}
    peak = CupyPeak(cupy)

    # 1. First steps, before any other kernel was compiled in this process.
    results["first_steps"] = first_steps(cupy, torch, device, dry)
    rows = [[name, f"{v['first_s']:.2f}", f"{v['second_s'] * 1e3:.1f}", f"{v['third_s'] * 1e3:.1f}"]
            for name, v in results["first_steps"].items()]
    print(f"First steps of the U-Net (base 16, depth 2, {'batch 2, 16x16' if dry else 'batch 8, 64x64'}), "
          "the first work of the process "
          f"(CuPy kernel cache: {os.environ.get('CUPY_CACHE_DIR', '~/.cupy/kernel_cache')})\n")
    print(markdown_table(["library", "first step s", "second step ms", "third step ms"], rows) + "\n")

    # 2. Conv layers.
    from bench_conv import LAYERS, describe

    rows, fb = [], []
    results["conv"] = {}
    for name in [c for c in args.layers if c in LAYERS]:
        spec = shrink(LAYERS[name]) if dry else LAYERS[name]
        ours_fwd, torch_fwd, ours_step, torch_step = conv_layer_pair(cupy, torch, device, spec)
        has_torch = device is not None
        fwd = timed(ours_fwd, torch_fwd if has_torch else None, repeats, warmup)
        step = timed(ours_step, torch_step if has_torch else None, repeats, warmup)
        mem_ours = peak.measure(ours_step)
        mem_torch = torch_peak(torch, torch_step) if has_torch else None
        results["conv"][name] = {"spec": describe(name, spec), "fwd": fwd, "fwd_bwd": step,
                                 "peak_mib": {"ours": mem_ours, "torch": mem_torch}}
        if step["ratio"] is not None:
            fb.append(step["ratio"])
        rows.append([describe(name, spec), ms(fwd["ours"]), ms(fwd["theirs"]), ratio(fwd["ratio"]),
                     ms(step["ours"]), ms(step["theirs"]), ratio(step["ratio"]),
                     f"{mem_ours:.1f}", "-" if mem_torch is None else f"{mem_torch:.1f}"])
        print(f"  {rows[-1][0]}: fwd+bwd x{ratio(step['ratio'])}", file=sys.stderr)
    print("Conv layers (float32), forward and forward + backward\n")
    print(markdown_table(["layer", "fwd ours ms", "fwd torch ms", "fwd ratio", "fwd+bwd ours ms",
                          "fwd+bwd torch ms", "fwd+bwd ratio", "peak ours MiB", "peak torch MiB"], rows))
    if fb:
        results["conv_median_ratio"] = statistics.median(fb)
        print(f"\nmedian fwd+bwd ratio over {len(fb)} layers: {statistics.median(fb):.2f} "
              f"(target <= {TARGETS['conv_median']}); largest {max(fb):.2f}\n")

    # 3. Training steps.
    nets = {"U-Net base 16, depth 2, batch 8, 64x64": (16, 2, 8, 64)}
    if not args.skip_large:
        nets["U-Net base 32, depth 4, batch 8, 256x256"] = (32, 4, 8, 256)
    rows = []
    results["steps"] = {}
    for label, (base, depth, batch, size) in nets.items():
        if dry:
            batch, size = 1, 32
            label += " (dry run: batch 1, 32x32)"
        ours, theirs = unet_step_pair(cupy, torch, device, base, depth, batch, size)
        t = timed(ours, theirs, max(repeats // 2, 1), warmup)
        mem_ours = peak.measure(ours)
        mem_torch = torch_peak(torch, theirs) if theirs is not None else None
        results["steps"][label] = {"time": t, "peak_mib": {"ours": mem_ours, "torch": mem_torch}}
        mem_ratio = None if mem_torch in (None, 0) else mem_ours / mem_torch
        rows.append([label, ms(t["ours"]), ms(t["theirs"]), ratio(t["ratio"]), f"{mem_ours:.0f}",
                     "-" if mem_torch is None else f"{mem_torch:.0f}", ratio(mem_ratio)])
        print(f"  {label}: x{ratio(t['ratio'])}, memory x{ratio(mem_ratio)}", file=sys.stderr)
    print("Training steps (forward, cross-entropy, backward, SGD momentum 0.9)\n")
    print(markdown_table(["model", "ours ms", "torch ms", "ratio", "peak ours MiB", "peak torch MiB",
                          "memory ratio"], rows))
    print(f"\ntargets: step <= {TARGETS['unet_step']}x torch, peak memory <= {TARGETS['memory']}x")

    # 4. Levers, and where the host's time goes.
    results["levers"] = lever_rows(cupy, repeats, warmup, dry, nets, peak)
    if args.profile:
        profile_step(cupy, dry, args.profile)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
