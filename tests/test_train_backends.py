"""The training driver on both backends (CuPy played by the CPU stand-in where there is no GPU):
the environment chooses the default backend and the flag overrides it; a run trained on one
backend evaluates, predicts and resumes on the other; a training step sends only its batch to
the device and brings only its loss back."""
import json
import os

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import train
from minisegnet.cli import main

from helpers import run_interrupted_in_epoch_2, traffic_per_step

TINY = ["--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "8", "--epochs", "2",
        "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--quiet"]
TINY_CONFIG = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
                   model_args=dict(base_channels=4, depth=2))
QUIET = dict(progress=False, log=lambda *a: None)


def _history(out):
    return [{k: v for k, v in h.items() if k not in ("seconds",)}
            for h in json.load(open(os.path.join(out, "metrics.json")))["epochs"]]


def _backend_of(out):
    return json.load(open(os.path.join(out, "config.json")))["config"]["backend"]


def test_the_environment_is_the_default_backend_and_the_flag_overrides_it(tmp_path, monkeypatch, cupy):
    monkeypatch.setenv("MINISEGNET_BACKEND", "cupy")
    msn.set_backend("numpy")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "env")]) == 0
    assert _backend_of(tmp_path / "env") == "cupy"
    assert main(["train", *TINY, "--epochs", "1", "--backend", "numpy", "--out", str(tmp_path / "flag")]) == 0
    assert _backend_of(tmp_path / "flag") == "numpy"
    monkeypatch.setenv("MINISEGNET_BACKEND", "numpy")
    assert main(["train", *TINY, "--epochs", "1", "--backend", "cupy", "--out", str(tmp_path / "flag2")]) == 0
    assert _backend_of(tmp_path / "flag2") == "cupy"
    assert msn.backend.get_backend() == "numpy"        # a command leaves the process's backend as it found it


def test_a_run_moves_between_backends(tmp_path, monkeypatch, cupy):
    monkeypatch.delenv("MINISEGNET_BACKEND", raising=False)
    straight = train.run(dict(TINY_CONFIG, backend="numpy"), out=str(tmp_path / "numpy"), **QUIET)

    # trained on cupy, interrupted in epoch 2, resumed on numpy: the numbers of the numpy run
    half = str(tmp_path / "half")
    run_interrupted_in_epoch_2(dict(TINY_CONFIG, backend="cupy"), half, monkeypatch, **QUIET)
    assert main(["train", "--resume", "--out", half, "--backend", "numpy", "--quiet"]) == 0
    assert _backend_of(half) == "numpy"
    for a, b in zip(_history(half), _history(straight)):
        assert a == pytest.approx(b, rel=1e-5), (a, b)

    # evaluated (and predicting) on the other backend, whichever the process is on
    for run_dir, where, current in ((straight, "cupy", "numpy"), (straight, "numpy", "cupy"), (half, "cupy", "cupy")):
        msn.set_backend(current)
        scores, recorded = train.evaluate_checkpoint(run_dir, backend_name=where, log=lambda *a: None)
        assert scores["mean_iou"] == pytest.approx(recorded["mean_iou"], rel=1e-5)
        assert msn.backend.get_backend() == current
    msn.set_backend("numpy")
    from PIL import Image
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", straight, str(tmp_path / "x.png"), "--out", str(tmp_path / "p"), "--backend", "cupy"]) == 0


def test_a_training_step_sends_the_batch_and_brings_back_the_loss(tmp_path, transfers, cupy):
    per_step, shown = traffic_per_step(
        transfers, lambda steps: train.run(dict(TINY_CONFIG, epochs=1, num_train=8 * steps, backend="cupy"),
                                           out=str(tmp_path / f"s{steps}"), **QUIET))
    image_bytes, mask_bytes = 8 * 3 * 32 * 32 * 4, 8 * 32 * 32 * 8

    def where(site):                       # "minisegnet/train.py:354 (_forward)" -> ("train.py", "_forward")
        path, _, function = site.partition(" (")
        return os.path.basename(path.split(":")[0]), function.rstrip(")")

    # The driver and the task: the batch goes up (images, labels), nothing comes down.
    driver = {(d, where(s)): v for (d, s, w), v in per_step.items()
              if os.path.join("minisegnet", "train.py") in s or os.path.join("minisegnet", "tasks") in s}
    assert driver == {("H2D", ("train.py", "_forward")): (1, image_bytes),
                      ("H2D", ("semantic.py", "targets")): (1, mask_bytes)}, shown
    # Down: the loss for the progress bar (Tensor.item), and nothing else: no check of the labels
    # read back (the loss checked them on the device, a sync each step, until the task checked
    # them on the host)
    downloads = {(where(s), w): v for (d, s, w), v in per_step.items() if d == "D2H"}
    assert downloads == {(("autograd.py", "item"), "item"): (1, 4)}, shown
    # Up, besides the batch: nothing near its size (small index tables and scalars at most).
    others = sum(b for (d, s, w), (n, b) in per_step.items() if d == "H2D") - image_bytes - mask_bytes
    assert others < (image_bytes + mask_bytes) / 16, shown
