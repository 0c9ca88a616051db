"""What the deforming augmentations cost a training epoch: the default ``minisegnet train`` run.

    python benchmarks/bench_augment.py            # one thread, CPU time
    python benchmarks/bench_augment.py --quick    # fewer images: a smoke run, not a measurement

The default run trains a same-padding U-Net (8 base channels, depth 3) on
512 ``Shapes`` images of 64x64, batch 8, Adam, with flips and 90-degree
rotations. This script times, with one thread and by CPU time:

* the loader alone (drawing, augmenting and stacking every batch of an
  epoch) for the default augmentation and for it plus ``elastic``,
  ``affine`` and ``color`` (each alone and all three);
* a whole training epoch (loader, forward, loss, backward, Adam step) with
  the default augmentation and with all three added.

Each is timed ``--repeats`` times (3 by default), the loaders in turn and
the two epochs alternately, and the medians are reported.

The augmentation runs on the host, in the loader, so its cost is the
loader's extra time; the target is an epoch no more than about 25% slower.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import timing  # noqa: E402


def transforms():
    """name -> the list of transforms: the default toy augmentation, then the new ones added."""
    from minisegnet.data import ColorJitter, RandomAffine, RandomElastic, RandomFlip, RandomRot90

    default = [RandomFlip(horizontal=True, vertical=True), RandomRot90()]
    elastic, affine = RandomElastic(), RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5)
    color = ColorJitter(brightness=0.2, contrast=0.2, gamma=0.2)
    return {"default (flips, rot90)": default, "+ elastic": default + [elastic], "+ affine": default + [affine],
            "+ color": default + [color], "+ elastic, affine, color": default + [elastic, affine, color]}


def loader_seconds(dataset, steps, batch):
    from minisegnet.data import Compose, DataLoader

    loader = DataLoader(dataset, batch, shuffle=True, seed=0, drop_last=True, transform=Compose(*steps))
    start = time.process_time()
    for _ in loader:
        pass
    return time.process_time() - start


def epoch_seconds(dataset, steps, batch):
    import minisegnet as msn
    from minisegnet import functional as F, optim
    from minisegnet.data import Compose, DataLoader
    from minisegnet.models import UNet

    msn.manual_seed(0)
    model = UNet(3, 4, base_channels=8, depth=3, padding="same")
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(dataset, batch, shuffle=True, seed=0, drop_last=True, transform=Compose(*steps))
    start = time.process_time()
    for images, masks in loader:
        loss = F.cross_entropy(model(msn.tensor(images)), msn.tensor(masks))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.process_time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 images: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each, interleaved (default 3)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    from minisegnet.data import Shapes

    n, batch = (64, 8) if args.quick else (512, 8)
    shapes = Shapes(n, 64, seed=0)
    dataset = [shapes[i] for i in range(n)]           # drawn once, as the trainer keeps toy data in memory
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    loader_times, plain_times, augmented_times = {name: [] for name in transforms()}, [], []
    with timing.threads(1):
        for _ in range(args.repeats):
            for name, steps in transforms().items():
                loader_times[name].append(loader_seconds(dataset, steps, batch))
            plain_times.append(epoch_seconds(dataset, transforms()["default (flips, rot90)"], batch))
            augmented_times.append(epoch_seconds(dataset, transforms()["+ elastic, affine, color"], batch))
    load = monitor.stop()
    loaders = {name: statistics.median(times) for name, times in loader_times.items()}
    plain, augmented = statistics.median(plain_times), statistics.median(augmented_times)
    reasons = timing.verdict(load)
    print(timing.report_header(info, load, reasons, f"{n} Shapes images 64x64, batch {batch}, one thread, "
                                                    f"CPU time of this process; medians of {args.repeats}, "
                                                    f"interleaved.") + "\n")
    base = loaders["default (flips, rot90)"]
    rows = [[name, f"{seconds:.2f}", f"{seconds - base:+.2f}", f"{100 * (seconds - base) / plain:+.1f}%"]
            for name, seconds in loaders.items()]
    print(timing.markdown_table(["augmentation", "loader pass s", "extra s", "extra / default epoch"], rows,
                                reasons))
    print()
    print(timing.markdown_table(["training epoch", "s"], [["default augmentation", f"{plain:.1f}"],
                                                         ["+ elastic, affine, color", f"{augmented:.1f}"],
                                                         ["slower by", f"{100 * (augmented / plain - 1):.1f}%"]],
                                reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
