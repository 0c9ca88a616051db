"""End to end: a tiny `minisegnet train` run writes every file; `evaluate` reproduces the
saved metrics; `predict` writes overlays for any image size; checkpoints reload to
identical outputs; the same seed gives the same numbers; --resume continues exactly;
a NaN loss stops the run and keeps the last good checkpoint; user errors exit 2."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import minisegnet as msn
from minisegnet import cli, data, model_geometry, predict, runfolder, train
from minisegnet.cli import main
from helpers import png_header_only, run_interrupted_in_epoch_2

TINY = ["--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "8", "--epochs", "2",
        "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--quiet"]
FOLDER_TINY = TINY[:2] + TINY[6:]       # without --num-train and --num-val: a folder has its own split
TINY_CONFIG = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
                   model_args=dict(base_channels=4, depth=2))
SCORES = ("val_loss", "pixel_acc", "mean_acc", "mean_iou", "fw_iou")


def _numbers(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "tiny")
    assert main(["train", *TINY, "--out", out]) == 0
    return out


def test_tiny_run_writes_every_file(run_dir):
    assert sorted(os.listdir(run_dir)) == ["best.npz", "checkpoint.npz", "config.json", "curves.png",
                                           "metrics.json", "predictions.png"]
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["config"]["model"] == "unet" and config["config"]["size"] == 32
    assert config["config"]["model_args"] == {"base_channels": 4, "depth": 2}
    assert config["info"]["num_classes"] == 4 and len(config["info"]["palette"]) == 4
    record = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert [h["epoch"] for h in record["epochs"]] == [1, 2]
    for h in record["epochs"]:
        for key in SCORES + ("train_loss",):
            assert np.isfinite(h[key]), key
        assert 0 <= h["pixel_acc"] <= 1 and 0 <= h["mean_iou"] <= 1
    best = max(record["epochs"], key=lambda h: h["mean_iou"])
    assert record["best"]["epoch"] == best["epoch"]
    from PIL import Image
    for name in ("curves.png", "predictions.png"):
        with Image.open(os.path.join(run_dir, name)) as im:
            assert im.format == "PNG" and min(im.size) > 200
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    meta = json.loads(str(state["meta"]))
    assert meta["epoch"] == 2 and any(k.startswith("optimizer.state.") for k in state)
    assert json.loads(str(msn.load(os.path.join(run_dir, "best.npz"))["meta"]))["epoch"] == best["epoch"]


def test_evaluate_reproduces_saved_metrics(run_dir, capsys):
    scores, recorded = train.evaluate_checkpoint(os.path.join(run_dir, "checkpoint.npz"), log=lambda *a: None)
    assert recorded["epoch"] == 2
    for key in SCORES:
        assert scores[key] == pytest.approx(recorded[key], rel=1e-5, abs=1e-6), key
    assert main(["evaluate", run_dir]) == 0          # a run directory means its best.npz
    printed = capsys.readouterr().out
    assert "best.npz" in printed and "mean IU" in printed and "IU per class" in printed


def test_predict_writes_overlays_for_any_size(run_dir, tmp_path):
    from PIL import Image
    image, _ = data.Shapes(1, (37, 45), seed=9)[0]
    path = tmp_path / "odd.png"
    Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(path)
    out = tmp_path / "pred"
    assert main(["predict", run_dir, str(path), "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["odd_mask.png", "odd_overlay.png"]
    with Image.open(out / "odd_overlay.png") as im:
        assert im.size == (45, 37) and im.mode == "RGB"
    mask = np.asarray(Image.open(out / "odd_mask.png"))
    assert mask.shape == (37, 45) and mask.max() < 4


def test_checkpoint_reload_gives_identical_outputs(run_dir):
    a, meta, _ = train.load_checkpoint(os.path.join(run_dir, "checkpoint.npz"))
    b, _, _ = train.load_checkpoint(os.path.join(run_dir, "checkpoint.npz"))
    x = msn.tensor(np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32))
    with msn.no_grad():
        np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # and a freshly initialised model of the same configuration differs
    msn.manual_seed(123)
    fresh = train.build_model_from(meta["config"], meta["info"])
    with msn.no_grad():
        assert not np.array_equal(fresh(x).numpy(), a(x).numpy())


def test_same_seed_same_numbers_and_other_seed_differs(run_dir, tmp_path):
    quiet = dict(progress=False, log=lambda *a: None)
    first = json.load(open(os.path.join(run_dir, "metrics.json")))["epochs"]
    again = train.run(dict(TINY_CONFIG), out=str(tmp_path / "again"), **quiet)
    assert _numbers(json.load(open(os.path.join(again, "metrics.json")))["epochs"]) == _numbers(first)
    other = train.run(dict(TINY_CONFIG, seed=1, epochs=1), out=str(tmp_path / "other"), **quiet)
    assert json.load(open(os.path.join(other, "metrics.json")))["epochs"][0]["train_loss"] != first[0]["train_loss"]


def test_resume_after_interruption_continues_exactly(run_dir, tmp_path, monkeypatch):
    out = str(tmp_path / "interrupted")
    quiet = dict(progress=False, log=lambda *a: None)
    run_interrupted_in_epoch_2(TINY_CONFIG, out, monkeypatch, **quiet)     # Ctrl-C during epoch 2's evaluation
    assert json.loads(str(msn.load(os.path.join(out, "checkpoint.npz"))["meta"]))["epoch"] == 1
    assert os.path.exists(os.path.join(out, "curves.png")) and os.path.exists(os.path.join(out, "predictions.png"))
    assert main(["train", "--resume", "--out", out, "--epochs", "2", "--quiet"]) == 0
    resumed = json.load(open(os.path.join(out, "metrics.json")))["epochs"]
    straight = json.load(open(os.path.join(run_dir, "metrics.json")))["epochs"]
    assert _numbers(resumed) == _numbers(straight)
    a = msn.load(os.path.join(out, "checkpoint.npz"))
    b = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    for key in a:
        if key != "meta":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "nan")
    from minisegnet.tasks import semantic
    real_ce, calls = semantic.cross_entropy_of_checked_labels, []

    def poisoned(*args, **kwargs):
        loss = real_ce(*args, **kwargs)
        calls.append(1)
        if len(calls) == 5:           # epoch 1: 2 steps + 1 evaluation batch; then epoch 2 step 2
            return loss * float("nan")
        return loss
    monkeypatch.setattr(semantic, "cross_entropy_of_checked_labels", poisoned)
    code = main(["train", *TINY, "--out", out])
    err = capsys.readouterr().err
    assert code == 1
    assert "loss became nan at epoch 2, step 2" in err and "checkpoint.npz (epoch 1) is kept" in err
    assert "Traceback" not in err
    meta = json.loads(str(msn.load(os.path.join(out, "checkpoint.npz"))["meta"]))
    assert meta["epoch"] == 1
    assert len(json.load(open(os.path.join(out, "metrics.json")))["epochs"]) == 1


@pytest.mark.parametrize("height, width", [(2 * 64 + 4, 2 * 64 + 4), (64 + 4, 2 * 64 + 4)])
@pytest.mark.parametrize("depth", [3, 4])
def test_overlap_tiles_give_what_one_pass_over_the_whole_image_gives(depth, height, width):
    """Many tiles of a deep valid U-Net stitched together equal one pass over the mirror-padded
    image. A reviewer's find: tiles stepped by their output size (68, not a multiple of 2**depth)
    put their poolings on shifted grids, and 5% of the pixels changed class. A wide image: the tiles
    counted along each axis from its own size (a mutation review's find)."""
    from minisegnet.models import UNet

    msn.manual_seed(0)
    model = UNet(3, 3, base_channels=2, depth=depth, padding="valid")
    model.eval()
    # sizes 4 more than a multiple of 2**depth: valid outputs, whose whole pass exists
    image = np.random.default_rng(1).random((3, height, width)).astype(np.float32)
    tile_in, tile_out = model_geometry.valid_unet_input(model, 64)
    margin = (tile_in - tile_out) // 2                         # what a valid U-Net loses per side
    assert width > tile_out                                    # several tiles along the width
    whole_input = np.pad(image, ((0, 0), (margin, margin), (margin, margin)), mode="reflect")
    with msn.no_grad():
        whole = model(msn.tensor(whole_input[None])).numpy()
    tiled = predict.image_outputs(model, image).numpy()
    assert whole.shape == tiled.shape == (1, 3, height, width)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_a_deep_same_padding_unet_predicts_any_size():
    from minisegnet.models import UNet

    model = UNet(3, 2, base_channels=2, depth=6, padding="same")
    model.eval()
    assert predict.predict_image(model, np.zeros((3, 70, 70), np.float32)).shape == (70, 70)


def test_valid_padding_unet_trains_and_predicts_with_overlap_tiles(tmp_path):
    out = train.run(dict(TINY_CONFIG, epochs=1, model_args=dict(base_channels=4, depth=1, padding="valid")),
                    out=str(tmp_path / "valid"), progress=False, log=lambda *a: None)
    model, meta, _ = train.load_checkpoint(out)
    assert model.padding == "valid"
    geometry = train.geometry_for(model, 32)
    assert geometry.padded                      # the image is mirror-padded to a valid tile
    scores, recorded = train.evaluate_checkpoint(out, log=lambda *a: None)
    assert scores["mean_iou"] == pytest.approx(recorded["mean_iou"], rel=1e-5)
    image = data.Shapes(1, (70, 41))[0][0]
    pred = predict.predict_image(model, image)
    assert pred.shape == (70, 41)
    # inside one tile, overlap-tile equals running the model on the mirror-padded tile
    small = image[:, :20, :20]
    tile_in, tile_out = model_geometry.valid_unet_input(model, 64)
    margin = (tile_in - tile_out) // 2
    padded = np.pad(small, ((0, 0), (margin, tile_in - 20 - margin), (margin, tile_in - 20 - margin)),
                    mode="reflect")
    with msn.no_grad():
        direct = model(msn.tensor(padded[None])).numpy().argmax(1)[0][:20, :20]
    np.testing.assert_array_equal(predict.predict_image(model, small), direct)


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/no/such/folder"], "neither a built-in dataset (shapes, roads, cells) nor an existing folder"),
    (["train", "--data", "rodas"], "did you mean --data roads?"),
    (["train", "--model-arg", "dpeth=2"], "--model-arg: unet has no option 'dpeth'; its options: base_channels, depth"),
    (["train", "--size", "30", "--model-arg", "depth=2"], "--size 30 does not fit"),
    (["train", "--epochs", "0"], "--epochs must be a positive integer"),
    (["train", "--size", "7"], "--size must be at least 16 pixels for the built-in --data shapes (its scenes "
                               "need the room), got 7"),
    (["train", "--size", "0", "--data", "cells"], "--size must be at least 16 pixels for the built-in --data cells "
                                                  "(its scenes need the room), got 0"),
    (["train", "--size", "-4", "--data", "roads"], "--size must be at least 16 pixels for the built-in --data "
                                                   "roads (its scenes need the room), got -4"),
    (["train", "--weight-decay", "-1"], "--weight-decay must be a non-negative number"),
    (["train", "--momentum", "-1", "--optimizer", "sgd"], "--momentum must be a non-negative number"),
    (["train", "--resume", "--epochs", "3"], "--resume needs --out"),
    (["train", "--model-arg", "no_such_option=1"], "--model-arg"),
    (["train", "--processes", "0"], "--processes must be a positive integer, got 0"),
    (["train", "--processes", "2", "--backend", "numpy", "--model-arg", "batch_norm=true"],
     "--processes 2: this model has BatchNorm"),
    (["evaluate", "/no/such/checkpoint.npz"], "does not exist"),
    (["predict", "/no/such/run", "x.png", "--out", "o"], "does not exist"),
    # each of these was a traceback, a hang or a silent acceptance before
    (["train", "--seed", "-1"], "--seed must be an integer from 0 to 2**64 - 1, got -1"),
    (["train", "--seed", str(2**64)], "--seed must be an integer from 0 to 2**64 - 1, got 18446744073709551616"),
    (["train", "--data", "/no/such/folder", "--num-train", "16"], "neither a built-in dataset"),   # not --num-train
    (["train", "--processes", "9", "--batch-size", "8"], "--processes 9: each process takes a share of a batch's"),
    (["train", "--optimizer", "sgd", "--momentum", "1"], "--momentum must be below 1"),
    (["train", "--size", "100000"], "at --size 100000: the built-in data (shapes) takes about"),
    (["train", "--num-train", "10000000000"], "--num-train 10000000000 and --num-val 64 at --size 64: the built-in "
                                              "data (shapes) takes about"),
    (["augment-preview", "--out", "no/such/folder/p.png"], "the folder"),
    (["augment-preview", "--size", "16", "--out", "p.xyz"], "--out 'p.xyz': must name a .png file"),   # a traceback
    (["train", "--model-arg", "depth=abc"], "--model-arg: UNet: depth must be a positive integer, got 'abc'"),
    (["train", "--optimizer", "adam", "--momentum", "0.5"], "--momentum 0.5 is SGD's; --optimizer adam does not use"),
    (["train", "--momentum", "0.5"], "--momentum 0.5 is SGD's; --optimizer adam does not use"),   # adam: the default
    (["train", "--resume", "--out", "r", "--size", "32"],
     "only --epochs, --backend and --processes may be given with it, got --size"),
])
def test_user_errors_exit_2_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_toy_data_memory_check_counts_the_drawing(capsys, tmp_path, monkeypatch):
    """The built-in scenes are drawn one by one and kept: the check counts the kept scenes and the
    drawing of one more (Shapes: 175 bytes a pixel), before any scene is drawn. On the old code it
    counted the kept scenes only (12 x 64 x 64 x 20 bytes = 0.9 MiB) and went on to draw."""
    from minisegnet import checks

    monkeypatch.setattr(checks, "memory_bytes", lambda: 1_200_000)
    monkeypatch.setattr(data.Shapes, "_draw", lambda *a: pytest.fail("drew a scene"))
    argv = ["train", "--size", "64", "--num-train", "8", "--num-val", "4", "--model-arg", "base_channels=4",
            "--model-arg", "depth=2", "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "minisegnet train: error: --num-train 8 and --num-val 4 at --size 64: the built-in data (shapes) takes "
        "about 1.6 MiB to draw and keep in memory (12 scenes of 64x64 pixels kept at 20 bytes a pixel, and 175 "
        "bytes a pixel while one is drawn), more than this machine's memory (1.1 MiB); the largest --size that "
        "fits is 53\n")
    assert train.toy_data_bytes(data.Shapes, 12, 53) <= 1_200_000 < train.toy_data_bytes(data.Shapes, 12, 54)
    assert main(argv[:4] + ["1000"] + argv[5:]) == 2          # too many scenes for even the smallest size
    assert capsys.readouterr().err.endswith("more than this machine's memory (1.1 MiB); use fewer --num-train "
                                            "and --num-val\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dataset", [data.Shapes, data.Roads, data.Cells], ids=lambda d: d.__name__)
@pytest.mark.parametrize("instances", [False, True])
def test_toy_data_bytes_is_never_below_what_drawing_and_keeping_takes(dataset, instances):
    """The estimate against tracemalloc's peak while a run draws and keeps its scenes (_InMemory)."""
    import tracemalloc

    size, counts = 300, {"train": 3, "val": 2}
    tracemalloc.start()
    try:
        kept = [train._InMemory(dataset(n, size, seed=0, split=split, return_instances=instances))
                for split, n in counts.items()]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(kept[0]) == 3
    assert peak <= train.toy_data_bytes(dataset, 5, size, instances) <= 1.5 * peak      # never below; not wildly above


def test_a_folder_without_masks_and_folder_options_that_do_not_apply(tmp_path, capsys):
    root = _write_folder(tmp_path / "ds", n=3)
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--num-train", "5"]) == 2
    assert "--num-train 5: the built-in datasets are generated to that size; a folder's images are all used, " \
           "20% of them held out" in capsys.readouterr().err
    (root / "masks").rename(root / "labels")
    assert main(["train", *FOLDER_TINY, "--data", str(root)]) == 2
    assert "the folder has no masks/ subfolder" in capsys.readouterr().err


def test_a_second_run_with_the_default_out_says_where_it_goes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = train.resolve_config({})
    said = []
    assert train._choose_out(config, said.append) == os.path.join("runs", "unet_shapes_seed0") and not said
    os.makedirs(os.path.join("runs", "unet_shapes_seed0"))
    assert train._choose_out(config, said.append) == os.path.join("runs", "unet_shapes_seed0_2")
    assert said == [f"{os.path.join('runs', 'unet_shapes_seed0')}/ holds an earlier run, so this one goes to "
                    f"{os.path.join('runs', 'unet_shapes_seed0_2')}/ (--out chooses the folder)"]


def test_ctrl_c_in_the_first_epoch_says_there_is_no_checkpoint_yet(tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train.run(dict(TINY_CONFIG, epochs=1), out=str(tmp_path / "r"), progress=False, log=said.append)
    assert any("interrupted before the first epoch finished: no checkpoint yet" in line for line in said), said
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


@pytest.mark.parametrize("cores, flag", [(2, " --processes 1"), (1, "")])
def test_the_resume_command_names_the_runs_process_count_where_a_resume_would_choose_another(
        tmp_path, monkeypatch, cores, flag):
    """A resume chooses its processes as a new run does here (two on two cores): a run given
    --processes 1 on two cores resumed on two and ended a rounding away from the uninterrupted
    run, so the printed command names the run's count where it differs."""
    from minisegnet import data_parallel

    said = []
    monkeypatch.setattr(data_parallel.parallel, "get_num_threads", lambda: cores)
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train.run(dict(TINY_CONFIG, epochs=1, processes=1, backend="numpy"), out=str(tmp_path / "r"), progress=False,
                  log=said.append)
    assert said[-1].endswith(f"minisegnet train --resume --out {tmp_path / 'r'}{flag}"), said[-1]


def test_truncated_checkpoint_is_refused_and_best_is_intact(run_dir, tmp_path, capsys):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    ckpt = copy / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["evaluate", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.npz" in err and "Traceback" not in err
    assert main(["evaluate", str(copy)]) == 0       # best.npz is untouched and still works


def test_folder_data_end_to_end(tmp_path, monkeypatch):
    from PIL import Image
    shapes = data.Shapes(6, 40, seed=4)
    for name in ("images", "masks"):
        (tmp_path / "ds" / name).mkdir(parents=True)
    for i in range(6):
        image, mask = shapes[i]
        Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(tmp_path / "ds" / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(tmp_path / "ds" / "masks" / f"{i}.png")
    folder = {k: v for k, v in TINY_CONFIG.items() if k not in ("num_train", "num_val")}     # a folder's own split
    out = train.run(dict(folder, data=str(tmp_path / "ds"), epochs=1, batch_size=2),
                    out=str(tmp_path / "folder_run"), progress=False, log=lambda *a: None)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["info"]["num_classes"] == 4      # inferred from the masks
    assert os.path.exists(os.path.join(out, "predictions.png"))
    # the folder is recorded by its absolute path: the run is scored from anywhere (a new user's find)
    assert config["config"]["data"] == str(tmp_path / "ds")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    scores, _ = train.evaluate_checkpoint(out, log=lambda *a: None)
    assert 0 <= scores["mean_iou"] <= 1
    (tmp_path / "ds").rename(tmp_path / "moved")
    with pytest.raises(train.UserError, match=r"held-out images come from its --data .*ds' \(config.json\), "
                                              r"which cannot be read now"):
        train.evaluate_checkpoint(out, log=lambda *a: None)


@pytest.mark.slow
@pytest.mark.parametrize("model, extra", [
    ("deeplabv3plus", []),                                     # its toy defaults must fit the default 64 px
    ("deeplabv3plus", ["--model-arg", "atrous_rates=2,3,1"]),  # a list through --model-arg
    ("fcn8s", []), ("fcn32s", []), ("segnet", []),
])
def test_every_model_trains_from_the_cli(tmp_path, model, extra):
    out = str(tmp_path / model)
    argv = ["train", "--model", model, "--size", "64", "--num-train", "8", "--num-val", "4",
            "--batch-size", "4", "--epochs", "1", "--quiet", "--out", out, *extra]
    assert main(argv) == 0
    config = json.load(open(os.path.join(out, "config.json")))["config"]
    assert config["model"] == model
    if extra:
        assert tuple(config["model_args"]["atrous_rates"]) == (2, 3, 1)


# ---- --augment ---------------------------------------------------------
def test_augment_names_are_recorded_and_checked(tmp_path, capsys):
    out = str(tmp_path / "aug")
    assert main(["train", *TINY, "--epochs", "1", "--augment", "hflip,rot90", "--out", out]) == 0
    assert json.load(open(os.path.join(out, "config.json")))["config"]["augment"] == ["hflip", "rot90"]
    config = train.resolve_config(dict(TINY_CONFIG, augment="none"))
    assert config["augment"] == []
    assert train.resolve_config(dict(TINY_CONFIG))["augment"] == ["hflip", "vflip", "rot90"]
    assert train.resolve_config(dict(TINY_CONFIG, augment=False))["augment"] == []   # an older run's flag
    assert main(["train", *TINY, "--augment", "hflip,twirl", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown: twirl" in err and "hflip, vflip, rot90" in err
    assert main(["train", *TINY, "--augment", "hflip", "--no-augment"]) == 2


def test_no_augment_trains_without_augmentations(tmp_path):
    # --no-augment hands resolve_config an empty list (as does a saved run's "none"): no augmentations
    assert train.resolve_config(dict(TINY_CONFIG, augment=[]))["augment"] == []
    out = str(tmp_path / "plain")
    assert main(["train", *TINY, "--epochs", "1", "--no-augment", "--out", out]) == 0
    assert json.load(open(os.path.join(out, "config.json")))["config"]["augment"] == []


@pytest.mark.parametrize("given", ["hflip,,vflip", "elastic,", ",hflip", "hflip, ,vflip", ""])
def test_an_empty_augment_name_is_an_error_not_dropped(given, tmp_path, capsys):
    assert main(["train", *TINY, "--augment", given, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minisegnet train: error: --augment takes names from hflip, vflip, rot90")
    assert f"got {given!r} (an empty name: two commas in a row, or one at either end)" in err
    assert not os.path.exists(tmp_path / "x")
    with pytest.raises(train.UserError, match="an empty name"):
        train.resolve_config(dict(TINY_CONFIG, augment=["hflip", ""]))
    out = tmp_path / "p.png"
    assert main(["augment-preview", "--augment", given, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minisegnet augment-preview: error: --augment takes names from")
    assert f"got {given!r} (an empty name: two commas in a row, or one at either end)" in err
    assert not os.path.exists(out)


def test_default_augmentations_draw_what_the_combined_flip_did():
    # hflip, vflip, rot90 consume the epoch's random numbers exactly as the single
    # RandomFlip(horizontal, vertical) + RandomRot90 did, so default runs are unchanged.
    image, mask = data.Shapes(1, 16, seed=3)[0]
    named = data.Compose(*(data.AUGMENTATIONS[n]() for n in ("hflip", "vflip", "rot90")))
    combined = data.Compose(data.RandomFlip(horizontal=True, vertical=True), data.RandomRot90())
    for seed in range(12):
        a = named(image, mask, np.random.default_rng(seed))
        b = combined(image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


# ---- bad input found before any work ---------------------------------------------------------
def _write_folder(root, n=6, size=24):
    from PIL import Image
    shapes = data.Shapes(n, size, seed=4)
    for name in ("images", "masks"):
        (root / name).mkdir(parents=True)
    for i in range(n):
        image, mask = shapes[i]
        Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{i}.png")
    return root


def test_training_on_a_folder_says_once_how_it_fitted_the_images_channels(tmp_path, capsys):
    from PIL import Image
    root = _write_folder(tmp_path / "ds", n=6, size=32)                      # --size 32: no padding note
    for i in (1, 4):                                                          # two grey images
        with Image.open(root / "images" / f"{i}.png") as im:
            im.convert("L").save(root / "images" / f"{i}.png")
    with Image.open(root / "images" / "2.png") as im:                         # one with an alpha channel
        im.convert("RGBA").save(root / "images" / "2.png")
    out = tmp_path / "run"
    argv = ["train", *FOLDER_TINY, "--epochs", "1", "--data", str(root), "--out", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    note = (f"note: --data {str(root)!r}: 2 of 6 images (PIL mode L): repeated the grey channel; 1 of 6 images "
            "(PIL mode RGBA): dropped the alpha channel (the model takes 3 channels)")
    assert [line for line in lines if line.startswith("note:")] == [note], lines
    assert main(["evaluate", str(out)]) == 0                                  # evaluate reads the folder too
    assert capsys.readouterr().out.splitlines()[0] == note
    # an RGB folder: no note
    plain = _write_folder(tmp_path / "plain", n=3)
    full = data.FolderDataset(plain / "images", plain / "masks", 4)
    assert data.check_folder(full) == 3 and full.conversion_summary() is None
    assert [a.shape for a in full[0]] == [(3, 24, 24), (24, 24)]             # __getitem__ as before


def test_folder_data_is_checked_before_training_and_every_bad_file_reported(tmp_path, capsys):
    from PIL import Image
    root = _write_folder(tmp_path / "ds", n=7)
    Image.fromarray(np.full((24, 24), 4, np.uint8)).save(root / "masks" / "0.png")           # label 4 of 4 classes
    (root / "images" / "1.png").write_text("not a picture")                                  # not an image
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(root / "masks" / "2.png")             # 24x20, image 24x24
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(root / "masks" / "3.png")          # an RGB mask
    (root / "images" / "0.png").rename(root / "images" / "extra.png")                        # an image without mask
    (root / "masks" / "0.png").rename(root / "masks" / "extra.png")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(root / "images" / "lonely.png")  # ... and one more
    out = tmp_path / "run"
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--num-classes", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    # everything at once: the unpaired file too, not first alone (a new user's find)
    assert "Traceback" not in err and "4 of 7 image/mask pairs cannot be used and some files have no partner" in err
    for text in ("extra.png' holds label(s) [4] outside [0, 4)", "1.png", "is 24x24 but its mask",
                 "3.png' is an image of mode 'RGB'", "1 image(s) in", "have no mask (e.g. lonely)"):
        assert text in err, text
    assert not out.exists()                             # nothing was started


@pytest.mark.parametrize("meta, message", [
    (None, "no 'meta' entry"),
    ("{not json", "is not valid JSON"),
    ('{"format": "minisegnet-checkpoint-1", "epoch": 1, "history": [], "info": {}}', "lacks 'config'"),
    ('[1, 2]', "should be a JSON object"),
])
def test_resume_and_evaluate_refuse_a_checkpoint_without_a_usable_meta(run_dir, tmp_path, capsys, meta, message):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    del state["meta"]
    if meta is not None:
        state["meta"] = np.array(meta)
    for name in ("checkpoint.npz", "best.npz"):
        msn.save(state, copy / name)
    for argv in (["train", "--resume", "--out", str(copy), "--epochs", "3", "--quiet"],
                 ["evaluate", str(copy / "checkpoint.npz")], ["evaluate", str(copy)],
                 ["predict", str(copy), "x.png", "--out", str(tmp_path / "p")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.uint8])
@pytest.mark.parametrize("part", ["model", "optimizer"])
def test_resume_evaluate_and_predict_refuse_weights_of_another_kind(run_dir, tmp_path, capsys, dtype, part):
    import shutil
    from PIL import Image
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    key = next(k for k in state if k.startswith(f"{part}.") and k.endswith("weight" if part == "model" else "exp_avg"))
    assert state[key].dtype == np.float32
    state[key] = state[key].astype(dtype)
    for name in ("checkpoint.npz", "best.npz"):
        msn.save(state, copy / name)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    runs = [["train", "--resume", "--out", str(copy), "--epochs", "3", "--quiet"]]
    if part == "model":             # evaluate and predict read only the model's weights
        runs += [["evaluate", str(copy / "checkpoint.npz")], ["predict", str(copy), str(tmp_path / "x.png"),
                                                              "--out", str(tmp_path / "p")]]
    for argv in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        message = (f"its entry {key!r} holds {np.dtype(dtype)} values where the model has float32: a "
                   "floating-point weight takes floating-point values")
        assert ("checkpoint.npz'" in err or "best.npz'" in err) and message in err and "Traceback" not in err, \
            (argv, err)
    assert not (tmp_path / "p").exists()


def test_a_checkpoints_integer_count_must_be_an_integer():
    from minisegnet import nn
    model = nn.BatchNorm2d(3)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["model.num_batches_tracked"] = np.array(2.5)
    with pytest.raises(train.UserError, match="'model.num_batches_tracked' holds float64 values where the model "
                                              "has int64: an integer buffer takes integer values"):
        runfolder.check_checkpoint_dtypes("c.npz", state, model)


def test_evaluate_casts_float16_and_float64_weights_to_the_models_float32(run_dir, tmp_path, capsys):
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    names = [k for k in state if k.startswith("model.")]
    state.update({k: state[k].astype(np.float16 if i % 2 else np.float64) for i, k in enumerate(names)})
    msn.save(state, tmp_path / "half.npz")
    model, _, _ = train.load_checkpoint(tmp_path / "half.npz")
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert main(["evaluate", str(tmp_path / "half.npz")]) == 0


def test_predict_says_how_it_fitted_an_images_channels_to_the_model(run_dir, tmp_path, capsys):
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 4), dtype=np.uint8)
    Image.fromarray(pixels[..., 0], "L").save(tmp_path / "grey.png")
    Image.fromarray(pixels, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(pixels[..., :3], "RGB").save(tmp_path / "rgb.png")
    paths = [str(tmp_path / name) for name in ("grey.png", "rgba.png", "rgb.png")]
    assert main(["predict", run_dir, *paths, "--out", str(tmp_path / "p")]) == 0      # the model takes 3 channels
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"note: {paths[0]} has 1 channel (PIL mode L), the model takes 3: repeated the grey channel"
    assert lines[1].startswith(f"{paths[0]}: 20x24 -> ")
    assert lines[2] == f"note: {paths[1]} has 4 channels (PIL mode RGBA), the model takes 3: dropped the alpha channel"
    assert lines[3].startswith(f"{paths[1]}: 20x24 -> ") and lines[4].startswith(f"{paths[2]}: 20x24 -> ")
    assert len(lines) == 5                                                  # RGB as it is: no note


def test_predict_says_it_read_an_animated_images_first_frame(run_dir, tmp_path, capsys):
    from PIL import Image
    frames = [Image.fromarray(np.full((20, 24, 3), v, np.uint8), "RGB") for v in (30, 200, 90)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "still.gif")
    paths = [str(tmp_path / "moving.gif"), str(tmp_path / "still.gif")]
    assert main(["predict", run_dir, *paths, "--out", str(tmp_path / "p")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"note: {paths[0]} is animated (3 frames): predicted its first frame" in lines
    assert not any("animated" in line for line in lines if paths[1] in line)
    assert len(lines) == 3


def test_conversion_note_names_what_image_array_does():
    from PIL import Image

    from minisegnet.data.folder import conversion_note, image_array

    def note(mode, in_channels, **info):
        im = Image.new(mode, (4, 3))
        im.info.update(info)
        assert image_array(im, in_channels, "x.png").shape == (in_channels, 3, 4)
        return conversion_note(im, in_channels)

    assert note("RGB", 3) is None and note("L", 1) is None and note("I;16", 1) is None and note("P", 3) is None
    assert note("RGB", 1) == "has 3 channels (PIL mode RGB), the model takes 1: converted RGB to grey"
    assert note("RGBA", 1) == ("has 4 channels (PIL mode RGBA), the model takes 1: dropped the alpha channel, "
                               "converted RGB to grey")
    assert note("LA", 3) == ("has 2 channels (PIL mode LA), the model takes 3: dropped the alpha channel, "
                             "repeated the grey channel")
    assert note("I;16", 3) == "has 1 channel (PIL mode I;16), the model takes 3: repeated the grey channel"
    assert note("P", 1) == "has 1 channel (PIL mode P), the model takes 1: converted the palette's colours to grey"
    assert note("L", 1, transparency=0) == "has 1 channel (PIL mode L), the model takes 1: dropped the transparency"
    assert note("CMYK", 3) == "has 4 channels (PIL mode CMYK), the model takes 3: converted CMYK to RGB"
    assert note("LAB", 3) == "has 3 channels (PIL mode LAB), the model takes 3: converted LAB to RGB"   # A: not alpha


def test_predict_out_must_be_a_folder_it_can_make(run_dir, tmp_path, capsys):
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    (tmp_path / "a_file").write_text("")
    for out, message in ((tmp_path / "a_file", "is a file"), (tmp_path / "a_file" / "sub", "is a file, so no folder can be made")):
        assert main(["predict", run_dir, str(tmp_path / "x.png"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert main(["predict", run_dir, str(tmp_path / "x.png"), str(tmp_path / "nope.png"),
                 "--out", str(tmp_path / "p")]) == 2
    assert "nope.png' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()                # checked before any PNG was written


def test_predict_reads_16_bit_images_and_refuses_what_it_cannot_read_before_writing(run_dir, tmp_path, capsys,
                                                                                    monkeypatch):
    from minisegnet.data.folder import image_array
    from PIL import Image
    ramp = np.linspace(0, 65535, 24 * 24).reshape(24, 24).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as im:
        assert im.mode == "I;16"
        deep = image_array(im, 3, "deep.png")
    assert deep.shape == (3, 24, 24)                    # was all 1.0: convert("RGB") clips to 255
    np.testing.assert_allclose(deep[0], ramp / 65535.0, rtol=1e-6)
    assert main(["predict", run_dir, str(tmp_path / "deep.png"), "--out", str(tmp_path / "deep")]) == 0
    Image.fromarray(np.zeros((8, 8), np.float32)).save(tmp_path / "float.tiff")
    (tmp_path / "b").mkdir()
    for path in (tmp_path / "x.png", tmp_path / "b" / "x.png"):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path)
    assert main(["predict", run_dir, str(tmp_path / "float.tiff"), str(tmp_path / "x.png"),
                 str(tmp_path / "b" / "x.png"), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "has PIL mode 'F' (32-bit floats), whose range is unknown" in err
    assert "would both write x_*.png into --out" in err and not (tmp_path / "p").exists()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)    # PIL's decompression-bomb limit: 2 x this
    assert main(["predict", run_dir, str(tmp_path / "x.png"), "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and "Traceback" not in err and not (tmp_path / "q").exists()


def test_a_checkpoint_whose_record_was_changed_is_a_clear_error(run_dir, tmp_path, capsys):
    import json
    from PIL import Image
    state = dict(np.load(os.path.join(run_dir, "checkpoint.npz"), allow_pickle=False))
    meta = json.loads(str(state["meta"]))
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    for part, key, value, shown in (("config", "model", "nosuch", "does not describe a model this version "
                                                                  "builds (KeyError: 'nosuch'"),
                                    ("info", "num_classes", "four", "meta['info']['num_classes'] should be a "
                                                                    "positive integer, got 'four'")):
        changed = json.loads(json.dumps(meta))
        changed[part][key] = value
        np.savez(tmp_path / "changed.npz", **dict(state, meta=np.array(json.dumps(changed))))
        for argv in (["predict", str(tmp_path / "changed.npz"), str(tmp_path / "x.png"), "--out", str(tmp_path / "o")],
                     ["evaluate", str(tmp_path / "changed.npz")]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert shown in err and "Traceback" not in err
        assert not (tmp_path / "o").exists()
    changed = json.loads(json.dumps(meta))
    changed["config"]["batch_size"] = -5                # an option the user of evaluate never gave
    np.savez(tmp_path / "changed.npz", **dict(state, meta=np.array(json.dumps(changed))))
    assert main(["evaluate", str(tmp_path / "changed.npz")]) == 2
    assert "the configuration it records is not one this version runs" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--num-classes", "0"], "--num-classes must be a positive integer, got 0"),
    (["train", "--num-classes", "5"], "the built-in shapes data has 4 classes"),
    (["evaluate", "RUN", "--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["train", "--resume", "--out", "RUN", "--lr", "1"], "only --epochs, --backend and --processes may be given with it"),
    (["train", "--out", "RUN"], "already holds a run"),
    # --epochs 0 with --resume was taken as "not given" (the run's own epochs) and the run's files rewritten
    (["train", "--resume", "--out", "RUN", "--epochs", "0"], "--epochs must be a positive integer, got 0"),
])
def test_more_user_errors_exit_2(run_dir, argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([run_dir if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_large_folder_scan_shows_a_progress_bar(capsys):
    class Pairs:                                  # 60 good samples and one bad one
        def __len__(self):
            return 61

        def __getitem__(self, index):
            if index == 60:
                raise ValueError("mask 'm60.png' is a RGB image")
            return np.zeros((3, 4, 4), np.float32), np.zeros((4, 4), np.int64)
    with pytest.raises(ValueError, match="1 of 61 image/mask pairs cannot be used:\n  mask 'm60.png'"):
        data.check_folder(Pairs(), progress=True)
    assert "checking the data folder" in capsys.readouterr().err


def test_weight_decay_defaults_to_the_optimizers_own_and_an_explicit_zero_stays_zero():
    """A reviewer's find: --optimizer adamw --weight-decay 0 trained with 0.01 (and recorded 0)."""
    params = [msn.tensor(np.zeros(2), requires_grad=True)]
    for given, optimizer, expected in ((None, "adamw", 1e-2), (0.0, "adamw", 0.0), (None, "adam", 0.0),
                                       (None, "sgd", 0.0), (0.5, "adam", 0.5)):
        config = train.resolve_config(dict(optimizer=optimizer, weight_decay=given))
        assert config["weight_decay"] == expected                      # what config.json records ...
        assert train._make_optimizer(config, params).weight_decay == expected   # ... is what trains


@pytest.mark.parametrize("total", [3, 4, 5, 10, 100])
def test_the_step_schedule_divides_by_ten_after_each_full_third(total):
    """Twice within the run at most, never once a step (a run of 4 steps once decayed every step)."""
    opt = msn.optim.SGD([msn.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    schedule = train._make_schedule(dict(train.DEFAULTS, schedule="step", epochs=1), opt, total)
    rates = []
    for _ in range(total):
        rates.append(opt.lr)
        schedule.step()
    third = -(-total // 3)
    assert rates == [0.1 ** (t // third) for t in range(total)]
    assert len(set(rates)) <= 3


def test_evaluate_refuses_an_empty_loader_and_restores_the_models_mode():
    from minisegnet import data
    from minisegnet.models import UNet
    from minisegnet.tasks import SemanticTask

    model = UNet(3, 4, base_channels=2, depth=1, padding="same")
    task = SemanticTask(dict(num_classes=4, in_channels=3, class_names=["a", "b", "c", "d"],
                             palette=[[0, 0, 0]] * 4))
    shapes = data.Shapes(3, 16, seed=0)
    with pytest.raises(ValueError, match="leaves no batch"):              # the loader itself refuses this one
        data.DataLoader(shapes, 8, drop_last=True)
    with pytest.raises(train.UserError, match="evaluate: the held-out loader gave no batch"):
        train.evaluate(model, task, [], train.geometry_for(model, 16), 16)    # any iterable of batches
    model.eval()
    train.evaluate(model, task, data.DataLoader(shapes, 2), train.geometry_for(model, 16), 16)
    assert not model.training                                # it was in eval mode, and stays there


def test_the_progress_bar_is_drawn_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    # stderr captured (a file, not a terminal): the epoch lines on stdout, no bar redrawn into the log
    loud = [a for a in TINY if a != "--quiet"] + ["--epochs", "1", "--processes", "1"]
    assert main(["train", *loud, "--out", str(tmp_path / "log")]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1: train loss" in captured.out and "batch" not in captured.err
    # on a terminal the bar is there
    from minisegnet import cli

    monkeypatch.setattr(cli, "_is_terminal", lambda stream: True)
    assert main(["train", *loud, "--out", str(tmp_path / "tty")]) == 0
    bar = capsys.readouterr().err
    assert "epoch 1/1" in bar and "batch" in bar


def test_the_run_says_when_the_training_images_do_not_fill_a_batch():
    assert train._short_epoch(100, 16) == " (fewer training images than that: one batch of 16 an epoch)"
    assert train._short_epoch(8, 16) == train._short_epoch(16, 16) == ""
    # a last partial batch is left out, a different one each epoch: the log says so
    assert train._short_epoch(8, 9) == (" (1 full batch an epoch: 1 image left over, different ones each epoch "
                                        "as the order is shuffled, wait for a later epoch)")
    assert train._short_epoch(4, 11).startswith(" (2 full batches an epoch: 3 images left over")


def _edited(meta, **changes):
    """A copy of the checkpoint record ``meta`` with ``changes`` (``info=dict(...)`` updates its info)."""
    meta = dict(meta)
    for key, value in changes.items():
        meta[key] = dict(meta[key], **value) if key == "info" else value
    return meta


@pytest.mark.parametrize("changes, message", [
    (dict(epoch=-3), r"meta\['epoch'\] .* should be 0 or more, got -3"),
    (dict(history=[1, 2]), r"meta\['history'\] should hold one JSON object per epoch; item 0 is 1"),
    (dict(best=5), r"meta\['best'\] should be null or a JSON object whose 'epoch' is an integer"),
    (dict(best={"mean_iou": 0.5}), r"meta\['best'\] should be null or a JSON object whose 'epoch'"),
    (dict(info=dict(palette=[[1, 2]])), r"meta\['info'\]\['palette'\] should be a list of at least num_classes \(4\)"),
    (dict(info=dict(num_classes="4")), r"meta\['info'\]\['num_classes'\] should be a positive integer"),
], ids=["epoch-negative", "history-not-objects", "best-int", "best-without-epoch", "palette-shape", "num-classes-str"])
def test_a_checkpoint_meta_of_the_wrong_kind_is_refused_by_resume_evaluate_and_predict(
        run_dir, tmp_path, capsys, changes, message):
    import re
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    state["meta"] = np.array(json.dumps(_edited(json.loads(str(state["meta"])), **changes)))
    for name in ("checkpoint.npz", "best.npz"):
        msn.save(state, copy / name)
    for argv in (["train", "--resume", "--out", str(copy), "--epochs", "3", "--quiet"],
                 ["evaluate", str(copy)], ["predict", str(copy), "x.png", "--out", str(tmp_path / "p")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert re.search(message, err) and "Traceback" not in err, (argv, err)


def _without_rng_state(meta):
    meta = dict(meta)
    del meta["rng_state"]
    return meta


@pytest.mark.parametrize("edit, message", [
    (_without_rng_state, r"lacks 'rng_state', the random state resuming continues from"),
    (lambda meta: _edited(meta, rng_state="x"), r"meta\['rng_state'\] is not a random state this run can continue"),
    (lambda meta: _edited(meta, rng_state={"bit_generator": "MT19937", "state": {}}),
     r"meta\['rng_state'\] is not a random state"),
    (lambda meta: _edited(meta, best={"epoch": 1}), r"records its best epoch without a number for 'mean_iou'"),
], ids=["rng-missing", "rng-str", "rng-other-generator", "best-without-score"])
def test_resume_refuses_a_broken_record_of_what_only_resuming_reads(run_dir, tmp_path, capsys, edit, message):
    """The random state (and the best epoch's score) are read by resuming alone: evaluate does not need them."""
    import re
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    state["meta"] = np.array(json.dumps(edit(json.loads(str(state["meta"])))))
    msn.save(state, copy / "checkpoint.npz")
    assert main(["train", "--resume", "--out", str(copy), "--epochs", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert main(["evaluate", str(copy / "checkpoint.npz")]) == 0


def test_augment_preview_writes_into_a_folder_given_as_out(capsys, tmp_path, monkeypatch):
    """It wrote 'DIR.png' beside the folder and said it wrote 'DIR'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "figs").mkdir()
    assert main(["augment-preview", "--size", "16", "--draws", "1", "--out", "figs"]) == 0
    assert (tmp_path / "figs" / "augment_preview.png").is_file() and not (tmp_path / "figs.png").exists()
    assert capsys.readouterr().out.startswith(f"wrote {os.path.join('figs', 'augment_preview.png')}: ")


def test_an_unusable_cupy_backend_is_restored_after_a_command_that_ran_on_numpy(monkeypatch, tmp_path):
    """MINISEGNET_BACKEND=cupy on a machine without CuPy, overridden by --backend numpy: the run
    finished, then putting the backend back imported CuPy and raised (a traceback, exit 1)."""
    from minisegnet import backend, run_config

    def no_cupy(asked_by="set_backend('cupy')"):
        raise RuntimeError(f"{asked_by}: CuPy is not installed")

    before = backend.get_backend()
    monkeypatch.setattr(backend, "_import_cupy", no_cupy)
    backend.restore_backend("cupy")                  # what MINISEGNET_BACKEND=cupy leaves, unchecked
    try:
        with run_config._on_backend("numpy"):
            assert backend.get_backend() == "numpy"
        assert backend.get_backend() == "cupy"       # as it was, without importing CuPy
        assert main(["summary", "unet", "--input", "188"]) == 2    # a one-line error, not a traceback
    finally:
        backend.restore_backend(before)
    with pytest.raises(ValueError, match="restore_backend: name must be one of"):
        backend.restore_backend("tpu")


def test_a_misspelt_thread_count_is_a_one_line_error_of_the_command():
    env = dict(os.environ, MINISEGNET_NUM_THREADS="abc")
    done = subprocess.run([sys.executable, "-m", "minisegnet", "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == "minisegnet: error: MINISEGNET_NUM_THREADS must be a positive integer, got 'abc'\n"


def test_same_padding_crop_lands_on_the_image_pixels():
    """A 1x1 convolution sees one pixel: whatever the padding to a valid size, the crop gives the
    model on the unpadded image exactly (a crop from the corner instead of the padding's offset
    passed the shape and file checks above); 37x45, uneven padding on both axes."""
    msn.manual_seed(0)
    model = msn.nn.Conv2d(3, 2, 1)
    image = np.random.default_rng(0).random((3, 37, 45)).astype(np.float32)
    with msn.no_grad():
        direct = model(msn.tensor(image[None])).numpy()
    np.testing.assert_allclose(msn.backend.to_numpy(predict.image_outputs(model, image).data), direct, atol=1e-6)


def test_predict_image_runs_a_training_mode_model_in_eval_mode_and_changes_nothing(monkeypatch):
    """A model left in training mode: the prediction is eval mode's (BatchNorm's running statistics),
    the running statistics are untouched and the mode is restored (they changed, and the prediction
    used the image's own statistics, before)."""
    from minisegnet.models import SegNet

    model = SegNet(3, 4, base_channels=4, depth=2)
    frozen = [m for m in model.modules() if type(m).__name__ == "BatchNorm2d"][1].eval()   # one frozen BatchNorm
    modes = [m.training for m in model.modules()]
    image = np.random.default_rng(0).random((3, 20, 28)).astype(np.float32)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    pred = predict.predict_image(model, image)
    assert [m.training for m in model.modules()] == modes and not frozen.training      # each module's own mode
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    monkeypatch.setattr(predict, "_outputs", lambda *args: 1 / 0)     # the forward pass fails
    with pytest.raises(ZeroDivisionError):
        predict.image_outputs(model, image)
    assert [m.training for m in model.modules()] == modes             # restored all the same
    monkeypatch.undo()
    model.eval()
    np.testing.assert_array_equal(pred, predict.predict_image(model, image))
    assert not model.training


@pytest.mark.parametrize("image, kind, message", [
    (np.zeros((1, 3, 20, 20), np.float32), ValueError, r"predict_image: image must be 3-D \(C, H, W\), got shape "
                                                       r"\(1, 3, 20, 20\); a batch\? pass one image at a time"),
    (np.zeros((20, 24, 3), np.float32), ValueError, r"C = 3, the model's in_channels, got shape \(20, 24, 3\); "
                                                    r"channels last\? use image.transpose\(2, 0, 1\)"),
    (np.zeros((3, 20, 20), np.uint8), TypeError, "image must be floating point, got dtype uint8"),
    (msn.tensor(np.zeros((3, 20, 20), np.float32)), TypeError, r"a Tensor: pass its array, image.numpy\(\)"),
])
def test_predict_image_names_what_is_wrong_with_the_image(image, kind, message):
    from minisegnet.models import UNet

    with pytest.raises(kind, match=message):
        predict.predict_image(UNet(3, 2, base_channels=2, depth=1, padding="same"), image)


@pytest.mark.parametrize("multiple, kind", [("32", TypeError), (2.5, TypeError), (0, ValueError), (-1, ValueError)])
def test_predict_image_checks_its_multiple(multiple, kind):
    from minisegnet.models import UNet

    with pytest.raises(kind, match="predict_image: multiple must be a positive integer"):
        predict.predict_image(UNet(3, 2, base_channels=2, depth=1, padding="same"),
                              np.zeros((3, 20, 20), np.float32), multiple=multiple)


@pytest.mark.parametrize("args, where", [
    (["--model", "deeplabv3plus", "--batch-size", "1", "--num-train", "2"], "--batch-size 1: DeepLabV3Plus"),
    (["--task", "panoptic", "--batch-size", "1", "--num-train", "2"], "--batch-size 1: PanopticDeepLab"),
    (["--model", "deeplabv3plus", "--batch-size", "2", "--num-train", "1"],
     r"1 training image \(fewer than --batch-size 2\): DeepLabV3Plus"),
])
def test_a_model_that_needs_two_images_a_batch_is_refused_before_any_work(tmp_path, capsys, args, where):
    """It was a traceback from the first training step (exit 1), after the run folder was made."""
    out = tmp_path / "run"
    code = main(["train", "--size", "32", "--epochs", "1", "--num-val", "2", "--processes", "1", "--quiet",
                 *args, "--out", str(out)])
    assert code == 2
    assert re.search(rf"minisegnet train: error: {where} trains on batches of at least 2 images",
                     capsys.readouterr().err)
    assert not out.exists()


def test_model_arg_takes_a_one_number_tuple_with_a_trailing_comma(tmp_path):
    """'--model-arg atrous_rates=6,' failed ('a list must be integers, got 6,'), so one ASPP rate could not
    be given; a trailing comma makes a 1-tuple, as in Python. Recorded in config.json as such."""
    out = tmp_path / "run"
    code = main(["train", "--model", "deeplabv3plus", "--size", "32", "--batch-size", "2", "--epochs", "1",
                 "--num-train", "2", "--num-val", "2", "--quiet", "--model-arg", "atrous_rates=1,",
                 "--out", str(out)])
    assert code == 0
    with open(out / "config.json") as f:
        assert json.load(f)["config"]["model_args"]["atrous_rates"] == [1]
    with pytest.raises(SystemExit) as exit_info:                 # argparse's own usage error
        main(["train", "--model-arg", "atrous_rates=1,x", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("args", [
    ["--model", "deeplabv3plus", "--batch-size", "2", "--num-train", "3"],     # the short last batch is dropped
    ["--batch-size", "1", "--num-train", "2", "--model-arg", "base_channels=2", "--model-arg", "depth=1"],  # U-Net
])
def test_batches_the_models_can_train_on_are_taken(tmp_path, args):
    assert main(["train", "--size", "32", "--epochs", "1", "--num-val", "2", "--processes", "1", "--quiet",
                 *args, "--out", str(tmp_path / "run")]) == 0


@pytest.mark.parametrize("value", ["6,,", "1,,2", ",6"])
def test_model_arg_takes_only_pythons_tuple_spellings(tmp_path, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model-arg", f"atrous_rates={value}", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2


# ---- refusals a review of bad input asked for: each before the work it would waste ----------
def test_a_same_padding_unet_too_deep_for_the_size_is_refused_before_it_is_built(monkeypatch, capsys):
    """depth=10 at --size 32: the shape formula says so before any weight is made (building a
    deep U-Net's weights took minutes before the tiny forward pass could)."""
    monkeypatch.setattr(train, "_build_model", lambda *a: pytest.fail("built the model"))
    assert main(["train", *TINY[:12], "--model-arg", "depth=10", "--quiet", "--out", "unused"]) == 2
    assert "--size 32 does not fit this model" in capsys.readouterr().err


@pytest.mark.parametrize("out, words", [("", "--out is empty"),
                                        ("a_file/sub", "is a file, so no folder can be made there")])
def test_train_refuses_an_out_it_cannot_make_before_any_work(tmp_path, monkeypatch, capsys, out, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    monkeypatch.setattr(train, "build_datasets", lambda *a, **k: pytest.fail("built the data"))
    assert main(["train", *TINY, "--out", out]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["a_file"]                  # no run folder made elsewhere


def test_a_folder_that_cannot_be_written_is_a_user_error(tmp_path, monkeypatch):
    """A read-only place passes the permission test (root may write anywhere it is allowed to);
    writing a file there is what tells, and it is a UserError, not a traceback."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(train.UserError, match="--out .*: cannot write into this folder \\(Permission denied\\)"):
        train.make_out_folder(str(tmp_path / "run"))


@pytest.mark.parametrize("args, words", [
    (["train", "--augment", "hflip,hflip"], "--augment takes names from"),
    (["train", "--model-arg", "width=8", "--model-arg", "width=16"], "--model-arg width=... is given twice"),
    (["summary", "fcn8s", "--input", "64", "--model-arg", "width=8", "--model-arg", "width=16"],
     "--model-arg width=... is given twice"),
    (["augment-preview", "--augment", "hflip,hflip"], "named twice: hflip"),
    (["augment-preview", "--augment", "hflip", "--draws", "1000"], "1001 panels; one figure holds at most 64"),
])
def test_options_given_twice_or_too_many_panels_are_refused(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []


def test_folder_files_of_one_name_and_too_many_classes_are_refused(tmp_path, capsys):
    root = _write_folder(tmp_path / "ds", n=3)
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--num-classes", "300"]) == 2
    assert "--num-classes 300: a folder's masks are 8-bit index PNGs" in capsys.readouterr().err
    first = sorted(os.listdir(root / "images"))[0]
    stem = os.path.splitext(first)[0]
    (root / "images" / f"{stem}.jpg").write_bytes((root / "images" / first).read_bytes())
    assert main(["train", *FOLDER_TINY, "--data", str(root)]) == 2
    assert f"two files named {stem!r}" in capsys.readouterr().err


def test_a_checkpoint_with_nan_weights_is_refused(run_dir, tmp_path, capsys):
    state = dict(np.load(os.path.join(run_dir, "best.npz"), allow_pickle=False))
    key = next(k for k in state if k.startswith("model.") and k.endswith("weight"))
    state[key] = np.full_like(state[key], np.nan)
    np.savez(tmp_path / "nan.npz", **state)
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "nan.npz"), str(tmp_path / "x.png"), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert f"its entry {key!r} holds NaN or infinite values" in err, err


def test_a_blank_out_and_a_folder_without_write_permission_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--out", "   "]) == 2
    assert "--out is empty" in capsys.readouterr().err
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode & os.W_OK else real_access(path, mode))
    with pytest.raises(train.UserError, match="may not write into"):
        train.check_out_folder(str(tmp_path / "run"))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", [["train", *TINY, "--out", "run"],
                                     ["augment-preview", "--augment", "hflip", "--size", "32", "--out", "run/p.png"]])
def test_writing_into_a_folder_that_refuses_files_is_a_user_error(tmp_path, monkeypatch, capsys, command):
    """A read-only place can pass the permission test (root); a file written there tells."""
    import tempfile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "cannot write into this folder (Permission denied)" in err and "Traceback" not in err, err


def test_augment_preview_draws_at_most_64_panels(tmp_path, monkeypatch, capsys):
    from minisegnet.viz import sampling as viz_sampling

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(viz_sampling, "plot_augment_preview", lambda *a, **k: None)
    assert main(["augment-preview", "--augment", "hflip", "--size", "32", "--draws", "63"]) == 0
    assert main(["augment-preview", "--augment", "hflip", "--size", "32", "--draws", "64"]) == 2
    assert "65 panels; one figure holds at most 64" in capsys.readouterr().err


def test_a_checkpoint_with_one_infinite_bias_is_refused(run_dir, tmp_path, capsys):
    state = dict(np.load(os.path.join(run_dir, "best.npz"), allow_pickle=False))
    key = next(k for k in state if k.startswith("model.") and k.endswith("bias"))
    state[key] = state[key].copy()
    state[key].flat[0] = np.inf
    np.savez(tmp_path / "inf.npz", **state)
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "inf.npz"), str(tmp_path / "x.png"), "--out", str(tmp_path / "p")]) == 2
    assert f"its entry {key!r} holds NaN or infinite values" in capsys.readouterr().err


def test_num_classes_255_is_the_most_a_folder_takes(tmp_path, capsys):
    root = _write_folder(tmp_path / "ds", n=3)
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--num-classes", "256"]) == 2
    assert "--num-classes 256: a folder's masks are 8-bit index PNGs" in capsys.readouterr().err
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--num-classes", "255", "--epochs", "1",
                 "--out", str(tmp_path / "run")]) == 0


def test_a_size_larger_than_a_folders_images_is_said(tmp_path, capsys):
    """The crops of a --size beyond the smallest image mirror-pad it: said once, not silently."""
    root = _write_folder(tmp_path / "ds", n=3, size=40)
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert "mirror-padded" not in capsys.readouterr().out                  # --size 32
    assert main(["train", "--size", "48", *FOLDER_TINY[2:], "--data", str(root), "--epochs", "1",
                 "--out", str(tmp_path / "b")]) == 0
    assert ("note: --size 48 is larger than the smallest images of --data "
            f"{str(root)!r} (40 rows, 40 columns): they are mirror-padded to 48x48") in capsys.readouterr().out


def test_momentum_is_refused_for_adamw_as_for_adam(tmp_path, monkeypatch, capsys):
    """Only SGD uses --momentum: AdamW (whose moments decay by its betas too) refuses it as Adam
    does, before any work (the tests above give it with adam only)."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--optimizer", "adamw", "--momentum", "0.5", "--out", "run"]) == 2
    err = capsys.readouterr().err
    assert "--momentum 0.5 is SGD's; --optimizer adamw does not use it" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_resume_takes_epochs_backend_and_processes(run_dir, tmp_path):
    """The three options --resume's message names as allowed are allowed: a run continued with
    --processes 1 (and --backend) trains its one more epoch."""
    out = str(tmp_path / "more")
    shutil.copytree(run_dir, out)
    assert main(["train", "--resume", "--out", out, "--epochs", "3", "--backend", "numpy", "--processes", "1",
                 "--quiet"]) == 0
    assert len(json.load(open(os.path.join(out, "metrics.json")))["epochs"]) == 3


@pytest.mark.parametrize("option", [["--seed", "1"], ["--lr", "0.1"], ["--model-arg", "depth=2"],
                                    ["--optimizer", "sgd"], ["--augment", "hflip"], ["--no-augment"],
                                    ["--momentum", "0.9"]])
def test_resume_refuses_every_other_setting_naming_it_as_given(tmp_path, capsys, option):
    """Each is named as the option the user typed (--model-arg, not the config's model_args;
    --no-augment, not --augment). --momentum too, before the check that only SGD takes it: that
    check would compare with the default optimizer, not the resumed run's, and advise
    --optimizer sgd, which --resume refuses."""
    assert main(["train", "--resume", "--out", str(tmp_path / "r"), "--epochs", "3", *option]) == 2
    err = capsys.readouterr().err.rstrip()
    assert err.endswith("only --epochs, --backend and --processes may be given with it, got " + option[0]), err


def test_quiet_hides_the_progress_bar_even_on_a_terminal(tmp_path, monkeypatch, capsys):
    """--quiet: no bar where one would be drawn (the test above shows the bar on a terminal)."""
    from minisegnet import cli

    monkeypatch.setattr(cli, "_is_terminal", lambda stream: True)
    assert main(["train", *TINY, "--epochs", "1", "--processes", "1", "--out", str(tmp_path / "tty")]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1: train loss" in captured.out and "batch" not in captured.err


def test_ctrl_c_ends_train_with_the_shells_status_130(tmp_path, monkeypatch, capsys):
    """An interrupted run is neither a success (0) nor a user error (2): 128 + SIGINT, as shells
    report it, after train.run has said what it kept."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "run", interrupted)
    assert main(["train", *TINY, "--out", str(tmp_path / "r")]) == 130
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_pass_their_options_on(monkeypatch, command):
    """--backend (and evaluate's --batch-size) reach the library call; nothing runs here."""
    seen = {}
    monkeypatch.setattr(train, "evaluate_checkpoint", lambda *a, **k: seen.update(args=a, **k))
    monkeypatch.setattr(predict, "predict_images", lambda *a, **k: seen.update(args=a, **k))
    if command == "evaluate":
        assert main(["evaluate", "run", "--batch-size", "3", "--backend", "cupy"]) == 0
        assert seen == dict(args=("run",), batch_size=3, backend_name="cupy")
    else:
        assert main(["predict", "run", "a.png", "b.png", "--out", "o", "--backend", "cupy"]) == 0
        assert seen == dict(args=("run", ["a.png", "b.png"], "o"), backend_name="cupy")


@pytest.mark.parametrize("argv", [["evaluate", "/no/such/checkpoint.npz"],
                                  ["predict", "/no/such/run", "x.png", "--out", "o"]])
def test_evaluate_and_predict_errors_name_their_command(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"minisegnet {argv[0]}: error: ")


def test_evaluate_runs_where_the_run_was_trained_with_more_processes_than_cpus(run_dir, tmp_path, monkeypatch):
    """The process count, like the backend, is the machine's choice: a run recorded with
    --processes 2 is re-scored on a 1-CPU machine. The old code checked the recorded count
    against this machine's CPUs and refused the run, naming an option no one gave."""
    state = msn.load(os.path.join(run_dir, "checkpoint.npz"))
    meta = json.loads(str(state["meta"]))
    meta["config"]["processes"] = 2
    state["meta"] = np.array(json.dumps(meta))
    msn.save(state, tmp_path / "two.npz")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    scores, recorded = train.evaluate_checkpoint(tmp_path / "two.npz", log=lambda *a: None)
    assert scores["mean_iou"] == pytest.approx(recorded["mean_iou"], rel=1e-5, abs=1e-6)


def test_predict_refuses_a_run_with_more_classes_than_its_files_hold_before_writing(run_dir, tmp_path, capsys,
                                                                                  monkeypatch):
    """Each task states how many classes its prediction PNGs hold (panoptic: 65, its ids are
    category * 1000 + id in 16 bits); predict checks it before it writes anything. The old code
    wrote the images before the first one whose prediction did not fit, then a traceback."""
    from minisegnet.tasks.semantic import SemanticTask
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(SemanticTask, "most_classes_written", 3)            # the run has 4 classes
    out = tmp_path / "pred"
    assert main(["predict", run_dir, str(tmp_path / "a.png"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "a semantic run with 4 classes; its prediction files hold at most 3" in err and "Traceback" not in err
    assert not out.exists()


def test_predict_names_the_image_whose_prediction_its_files_cannot_hold(run_dir, tmp_path, capsys, monkeypatch):
    """A prediction a task's PNGs cannot hold (more objects than 16 bits of ids): a clear error
    naming the image and what was written before it, not a traceback."""
    from minisegnet.tasks.semantic import SemanticTask
    from PIL import Image
    for name in ("a", "b"):
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / f"{name}.png")
    write = SemanticTask.write_prediction

    def second_fails(self, image, prediction, out, stem):
        if stem == "b":
            raise ValueError("70000 objects do not fit a 16-bit PNG")
        return write(self, image, prediction, out, stem)

    monkeypatch.setattr(SemanticTask, "write_prediction", second_fails)
    assert main(["predict", run_dir, str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                 "--out", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert "b.png': 70000 objects do not fit a 16-bit PNG (the 2 files before it are written)" in err
    assert "Traceback" not in err


def test_the_panoptic_tasks_stated_limit_is_what_its_ids_png_holds(tmp_path):
    from minisegnet.tasks.panoptic import PanopticTask
    info = dict(num_classes=70, in_channels=3, class_names=[str(i) for i in range(70)],
                palette=[[i, i, i] for i in range(70)], ignore_index=None, thing_classes=[1],
                stuff_classes=[c for c in range(70) if c != 1])
    task = PanopticTask(info)
    image = np.zeros((3, 4, 4), np.float32)
    pan = np.zeros((4, 4, 2), np.int64)
    pan[..., 0] = PanopticTask.most_classes_written - 1
    task.write_prediction(image, {"panoptic": pan}, str(tmp_path), "fits")
    pan[..., 0] = PanopticTask.most_classes_written
    with pytest.raises(ValueError, match="at most 65 categories"):
        task.write_prediction(image, {"panoptic": pan}, str(tmp_path), "too_many")


@pytest.mark.parametrize("num_classes", [4, 300])
def test_a_class_map_png_reads_back_as_the_classes(tmp_path, num_classes):
    """Past 256 classes no palette holds them: the mask PNG is 16-bit grey (the old code cast to
    uint8, class 299 written as 43), read back by a folder dataset as the classes."""
    from minisegnet.tasks.semantic import class_map_png
    from PIL import Image
    classes = (np.arange(20 * 30).reshape(20, 30) % num_classes).astype(np.int64)
    palette = np.zeros((num_classes, 3), np.uint8)
    class_map_png(classes, palette).save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == ("P" if num_classes <= 256 else "I;16") or im.mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")).astype(np.int64), classes)


def test_resuming_a_finished_run_with_fewer_epochs_leaves_its_config_alone(run_dir, tmp_path):
    """'already trained for 2 epochs; its files are complete' must be true of config.json too:
    the old code rewrote it with epochs 1 while the checkpoint and metrics held 2."""
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = (copy / "config.json").read_text()
    assert main(["train", "--resume", "--out", str(copy), "--epochs", "1", "--quiet"]) == 0
    assert (copy / "config.json").read_text() == before
    assert json.loads(before)["config"]["epochs"] == 2


# ---- mutation review of stop 40's changes
def test_predict_takes_a_run_with_exactly_as_many_classes_as_its_files_hold(run_dir, tmp_path, monkeypatch):
    from minisegnet.tasks.semantic import SemanticTask
    from PIL import Image
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(SemanticTask, "most_classes_written", 4)            # the run has 4 classes: the limit
    assert main(["predict", run_dir, str(tmp_path / "a.png"), "--out", str(tmp_path / "pred")]) == 0


@pytest.mark.parametrize("num_classes, mode", [(256, "P"), (257, "I;16")])
def test_a_class_map_png_is_a_palette_up_to_256_classes_exactly(tmp_path, num_classes, mode):
    from minisegnet.tasks.semantic import class_map_png
    from PIL import Image
    classes = (np.arange(20 * 30).reshape(20, 30) % num_classes).astype(np.int64)
    class_map_png(classes, np.zeros((num_classes, 3), np.uint8)).save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == mode
        np.testing.assert_array_equal(np.asarray(im).astype(np.int64), classes)


def test_the_semantic_limit_is_what_a_16_bit_class_map_holds(tmp_path):
    from minisegnet.tasks.semantic import SemanticTask, class_map_png
    from PIL import Image
    assert SemanticTask.most_classes_written == 2 ** 16          # classes 0 to 65535
    classes = np.array([[0, 65535]], np.int64)
    class_map_png(classes, np.zeros((2 ** 16, 3), np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")).astype(np.int64), classes)


def _folder_with_one_void_image(root, n=5, size=32):
    from PIL import Image
    os.makedirs(root / "images"), os.makedirs(root / "masks")
    held_out = int(np.random.default_rng([0, 7]).permutation(n)[0])     # build_datasets' split for seed 0
    void = next(i for i in range(n) if i != held_out)                    # a training image
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        mask = rng.integers(0, 2, (size, size)).astype(np.uint8)
        if i == void:
            mask[:] = 255                                                # every pixel ignored
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i}.png")
    return root


def test_two_processes_on_a_void_image_do_not_stop_with_a_nan_loss(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)          # --processes 2 is refused on fewer CPUs
    folder = _folder_with_one_void_image(tmp_path / "d")
    args = ["train", "--data", str(folder), "--size", "32", "--batch-size", "2", "--epochs", "1",
            "--num-classes", "2", "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--quiet"]
    assert main([*args, "--processes", "1", "--out", str(tmp_path / "one")]) == 0     # one process trains
    capsys.readouterr()
    code = main([*args, "--processes", "2", "--out", str(tmp_path / "two")])
    err = capsys.readouterr().err
    assert "nan" not in err.lower(), err
    assert code == 0 or (code == 2 and "--processes" in err and
                         not os.path.exists(tmp_path / "two" / "checkpoint.npz")), (code, err)


@pytest.mark.parametrize("where, num_classes", [("images", ["--num-classes", "4"]), ("images", []),
                                                ("masks", ["--num-classes", "4"]), ("masks", [])])
def test_a_folder_file_past_pils_size_limit_is_reported_not_a_traceback(tmp_path, capsys, where, num_classes):
    # PIL's DecompressionBombError (an image of more than 2 * MAX_IMAGE_PIXELS pixels, or a corrupt
    # header claiming so) is no OSError: check_folder (and, without --num-classes, the class count
    # read from the masks) let it out, and train ended in a traceback with exit status 1
    root = _write_folder(tmp_path / "ds", n=3)
    png_header_only(root / where / "1.png", 20000, 20000, 2 if where == "images" else 0)
    out = tmp_path / "run"
    assert main(["train", *FOLDER_TINY, "--data", str(root), *num_classes, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "1.png" in err and "1 of 3 image/mask pairs cannot be used" in err
    assert not out.exists()


def test_a_class_count_read_from_the_masks_is_not_called_an_option_given(tmp_path, capsys):
    # without --num-classes, a 16-bit mask holding label 300 was refused as "--num-classes 301: ...",
    # an option the user never gave, with no word of the mask or the label that made the count
    from PIL import Image
    root = _write_folder(tmp_path / "ds", n=3)
    Image.fromarray(np.full((24, 24), 300, np.uint16)).save(root / "masks" / "2.png")     # 16-bit, mode I;16
    assert main(["train", *FOLDER_TINY, "--data", str(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--num-classes 301" not in err
    assert "300" in err


FOLDER_ONE_PROCESS = ["--size", "32", "--batch-size", "4", "--epochs", "1", "--model-arg", "base_channels=4",
                      "--model-arg", "depth=2", "--processes", "1", "--quiet"]


def _random_pairs(folder, names, rng):
    """A random 32x32 RGB image and 3-class mask under ``folder``'s images/ and masks/ for each name."""
    for sub in ("images", "masks"):
        os.makedirs(folder / sub, exist_ok=True)
    for name in names:
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / "images" / name)
        Image.fromarray(rng.integers(0, 3, (32, 32)).astype(np.uint8)).save(folder / "masks" / name)


TINY_ONE_PROCESS = ["--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "8", "--epochs", "1",
                    "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--processes", "1"]


def test_the_progress_bar_ends_each_epoch_with_the_tasks_score(tmp_path, monkeypatch, capsys):
    """train.py sets the bar's postfix to the epoch's loss and the task's best score (mean IU)
    after the loop, but tqdm closes a bar as soon as its iterable is exhausted, so that
    set_postfix is a no-op: the finished bar shows only the loss."""
    monkeypatch.setattr(cli, "_is_terminal", lambda stream: True)
    assert main(["train", *TINY_ONE_PROCESS, "--out", str(tmp_path / "tty")]) == 0
    bar = capsys.readouterr().err
    assert "epoch 1/1" in bar
    assert "mean_iou=" in bar, bar[-400:]


def test_a_truncated_image_in_a_data_folder_is_named(tmp_path, capsys):
    """check_folder reports an OSError from PIL as 'unreadable file: {error}' (data/folder.py:335);
    for a file cut short PIL's message is 'image file is truncated', naming no file, so the user
    is told that one of the pairs is bad but not which."""
    _random_pairs(tmp_path / "data", [f"im{i}.png" for i in range(6)], np.random.default_rng(0))
    broken = tmp_path / "data" / "images" / "im3.png"
    broken.write_bytes(broken.read_bytes()[:1500])      # the header intact, the pixel data cut short
    assert main(["train", *FOLDER_ONE_PROCESS, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "Traceback" not in err
    assert "im3.png" in err, err


def test_evaluate_after_a_file_is_added_to_the_data_folder_does_not_silently_score_another_split(tmp_path):
    """A folder run's held-out split is np.random.default_rng([seed, 7]).permutation(len(folder))
    (train.build_datasets), recorded nowhere: one pair added to the folder reshuffles the whole
    split, and `evaluate` then scores a different set of images (training images among them)
    next to the recorded scores, without a word. Either it scores the images the run held out,
    or it says the split is not the run's."""
    from minisegnet import train

    rng = np.random.default_rng(0)
    data_dir = tmp_path / "data"
    _random_pairs(data_dir, [f"im{i}.png" for i in range(10)], rng)
    run = str(tmp_path / "run")
    assert main(["train", *FOLDER_ONE_PROCESS, "--data", str(data_dir), "--out", run]) == 0
    _random_pairs(data_dir, ["zz_new.png"], rng)       # the folder grows by one pair
    said = []
    scores, recorded = train.evaluate_checkpoint(run, log=said.append)
    same = all(np.isclose(scores[k], recorded[k]) for k in ("val_loss", "pixel_acc", "mean_iou"))
    warned = any("split" in line or "changed" in line for line in said)
    assert same or warned, said


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_ctrl_c_ends_evaluate_and_predict_with_status_130_and_no_traceback(tmp_path, monkeypatch, command):
    """`train` turns Ctrl-C into exit status 130 without a traceback (cli.run_train); `evaluate`
    and `predict` let the KeyboardInterrupt escape main(), so a user stopping a long predict
    (a large image through a valid-padding U-Net's tiles) gets a Python traceback."""
    from minisegnet import predict, train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "evaluate_checkpoint", interrupted)
    monkeypatch.setattr(predict, "predict_images", interrupted)
    argv = {"evaluate": ["evaluate", str(tmp_path / "run")],
            "predict": ["predict", str(tmp_path / "run"), str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]}
    try:
        status = main(argv[command])
    except KeyboardInterrupt:
        status = "KeyboardInterrupt escaped main()"
    assert status == 130


def test_thing_classes_on_a_semantic_folder_run_is_not_silently_ignored(tmp_path, capsys):
    """--thing-classes is for the instance and panoptic tasks (help: 'needed by --task instance on
    a folder'); a semantic run on a folder accepts it, records it in config.json and uses it for
    nothing, without a word, where the CLI refuses other options a run would ignore (--momentum
    with Adam, --num-train with a folder, --num-classes with generated data)."""
    _random_pairs(tmp_path / "data", [f"im{i}.png" for i in range(6)], np.random.default_rng(0))
    status = main(["train", *FOLDER_ONE_PROCESS, "--data", str(tmp_path / "data"), "--thing-classes", "1",
                   "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert status == 2 or "--thing-classes" in said, said


def test_a_panoptic_model_arg_error_names_the_model_the_user_chose(tmp_path, capsys):
    """`--task panoptic --model-arg output_stride=3` is refused with 'DeepLabV3Plus: output_stride
    must be 16 or 8' (PanopticDeepLab builds a DeepLabV3Plus inside and lets its message through):
    the user chose panoptic-deeplab (--model's name), never DeepLabV3Plus."""
    assert main(["train", "--task", "panoptic", "--size", "32", "--num-train", "16", "--num-val", "8",
                 "--epochs", "1", "--quiet", "--model-arg", "output_stride=3", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "output_stride" in err
    assert "DeepLabV3Plus" not in err and ("PanopticDeepLab" in err or "panoptic-deeplab" in err), err


def _rename_pair(data_dir, old, new):
    for sub in ("images", "masks"):
        os.rename(data_dir / sub / old, data_dir / sub / new)


def test_renaming_a_held_out_image_is_noted_and_a_training_image_is_not(tmp_path):
    """The fingerprint is of the held-out split's names: renaming one of its images (the count and
    the order kept, so the same indices) changes the split evaluated; renaming a training image
    does not, and is not noted."""
    n = 10
    data_dir = tmp_path / "data"
    _random_pairs(data_dir, [f"im{i}.png" for i in range(n)], np.random.default_rng(0))
    run = str(tmp_path / "run")
    assert main(["train", *FOLDER_ONE_PROCESS, "--data", str(data_dir), "--out", run]) == 0
    order = np.random.default_rng([0, 7]).permutation(n)             # build_datasets' split for seed 0
    val_size = len(train.build_datasets(train.resolve_config(dict(train.DEFAULTS, data=str(data_dir))))[1])
    held, trained = int(order[0]), int(order[val_size])
    _rename_pair(data_dir, f"im{trained}.png", f"im{trained}b.png")   # sorts where it was
    said = []
    train.evaluate_checkpoint(run, log=said.append)
    assert not any("has changed" in line for line in said), said
    _rename_pair(data_dir, f"im{held}.png", f"im{held}b.png")
    said = []
    train.evaluate_checkpoint(run, log=said.append)
    assert any("has changed since the run was trained" in line for line in said), said


def test_a_run_recorded_without_a_split_fingerprint_is_not_noted():
    """A run of a version before the fingerprint (no held_out in its info): nothing to compare,
    nothing said; the same fingerprint: nothing; another: the note."""
    said = []
    train._same_split({"num_classes": 3}, {"num_classes": 3, "held_out": "0123456789abcdef"}, "d", said.append)
    train._same_split({"held_out": "0123456789abcdef"}, {"held_out": "0123456789abcdef"}, "d", said.append)
    assert said == []
    train._same_split({"held_out": "0123456789abcdef"}, {"held_out": "fedcba9876543210"}, "d", said.append)
    assert len(said) == 1 and "--data 'd' has changed" in said[0]


def test_resuming_after_the_folder_changed_says_the_split_is_not_the_runs(tmp_path, capsys):
    data_dir = tmp_path / "data"
    rng = np.random.default_rng(0)
    _random_pairs(data_dir, [f"im{i}.png" for i in range(10)], rng)
    run = str(tmp_path / "run")
    assert main(["train", *FOLDER_ONE_PROCESS, "--data", str(data_dir), "--out", run]) == 0
    _random_pairs(data_dir, ["zz_new.png"], rng)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", run, "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert "has changed since the run was trained" in captured.out + captured.err
    # the run keeps its own fingerprint: evaluating a checkpoint written after the resume notes it too
    said = []
    train.evaluate_checkpoint(run, log=said.append)
    assert any("has changed since the run was trained" in line for line in said), said


class _Bar:
    """A stand-in for tqdm that records how a bar is driven."""
    made = []

    def __init__(self, iterable=None, total=None, desc=None, leave=True, disable=False, **kwargs):
        self.total, self.desc, self.leave, self.n, self.closed, self.postfixes = total, desc, leave, 0, False, []
        _Bar.made.append(self)

    def __iter__(self):
        raise AssertionError("the epoch's bar is driven by hand")

    def update(self, n=1):
        assert not self.closed
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        self.postfixes.append((self.n, dict(ordered_dict or {}, **kwargs)))

    def close(self):
        self.closed = True


def test_the_epoch_bar_counts_its_batches_shows_the_loss_as_it_goes_and_stays(tmp_path, monkeypatch):
    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", _Bar)
    _Bar.made = []
    monkeypatch.setattr(cli, "_is_terminal", lambda stream: True)
    assert main(["train", *TINY_ONE_PROCESS, "--epochs", "2", "--out", str(tmp_path / "r")]) == 0
    bars = [b for b in _Bar.made if (b.desc or "").startswith("epoch")]
    assert [b.desc for b in bars] == ["epoch 1/2", "epoch 2/2"]
    for bar in bars:
        assert bar.total == bar.n == 2 and bar.leave and bar.closed       # 16 images, batches of 8
        assert [n for n, shown in bar.postfixes if set(shown) == {"loss"}] == [0, 1]   # before each update
        assert set(bar.postfixes[-1][1]) == {"loss", "mean_iou"}
