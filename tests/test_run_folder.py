"""Kill safety of a run folder: SIGKILL a tiny training run at a chosen moment (just before or
just after any of its file commits, i.e. inside each save and each figure write, or at a
random time), check that what it leaves is consistent, then resume it and check it ends
exactly where an uninterrupted run ends."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import runfolder, train
from helpers import run_interrupted_in_epoch_2

CONFIG = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
              model_args=dict(base_channels=4, depth=2), lr=0.05,     # epoch 2 the best: best.npz rewritten
              backend=os.environ.get("MINISEGNET_BACKEND", "numpy").strip().lower())    # the session's backend

# The child: a training run that kills itself (SIGKILL: no cleanup, no finally) just
# before or just after the k-th rename into the run folder. Every file of a run is
# written to a temporary name and renamed, so these moments are every state the
# folder can be seen in, including "inside" each save and each figure write.
CHILD = r"""
import json, os, signal, sys
spec = json.loads(sys.argv[1])
from minisegnet import train
out = os.path.abspath(spec["out"])
real_replace, renames = os.replace, []

def replace(src, dst):
    mine = os.path.dirname(os.path.abspath(dst)) == out
    if mine:
        renames.append(os.path.basename(dst))
        if len(renames) == spec["kill_at"] and spec["when"] == "before":
            os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if mine and len(renames) == spec["kill_at"] and spec["when"] == "after":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
train.run(spec["config"], out=spec["out"], resume=spec["resume"], progress=False, log=lambda *a: None)
print(json.dumps(renames))
"""


def _child(out, config=None, resume=False, kill_at=0, when="before", timeout=300):
    spec = dict(out=str(out), config=config if config is not None else {}, resume=resume, kill_at=kill_at,
                when=when)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _numbers(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run (in a child, as the killed ones) and the order of its file commits."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = _child(out, CONFIG)
    assert done.returncode == 0, done.stderr
    order = json.loads(done.stdout.strip().splitlines()[-1])
    missing = set(runfolder.RUN_FILES) - set(order)
    assert not missing, f"{sorted(missing)} never committed by a rename: written in place?"
    assert json.load(open(out / "metrics.json"))["best"]["epoch"] == 2   # so a kill can leave best.npz behind
    return out, order


def check_consistent(out):
    """What a kill may leave: only run files and their temporaries; every run file whole;
    metrics.json and best.npz at most one epoch behind the committed checkpoint, never ahead;
    and a run folder given to evaluate/predict still means the best epoch's model."""
    from PIL import Image
    if not out.exists():
        return
    names = sorted(os.listdir(out))
    for name in names:
        assert name in runfolder.RUN_FILES or (name.endswith(".tmp") and any(
            name.startswith(f".{f}.") for f in runfolder.RUN_FILES)), name
    present = set(names) & set(runfolder.RUN_FILES)
    if present:
        assert "config.json" in present, names
        json.load(open(out / "config.json"))
    for png in ("curves.png", "predictions.png"):
        if png in present:
            with Image.open(out / png) as im:
                im.load()
    metrics = json.load(open(out / "metrics.json")) if "metrics.json" in present else None
    if "checkpoint.npz" not in present:
        assert metrics is None and "best.npz" not in present, names
        return
    _, meta = runfolder.read_checkpoint(str(out / "checkpoint.npz"))
    assert runfolder.read_meta(str(out / "checkpoint.npz")) == meta         # the record alone, read cheaply
    if metrics is not None:
        assert len(metrics["epochs"]) in (meta["epoch"], meta["epoch"] - 1)
        assert metrics["epochs"] == meta["history"][:len(metrics["epochs"])]
    if "best.npz" in present:
        _, best_meta = runfolder.read_checkpoint(str(out / "best.npz"))
        assert best_meta["epoch"] <= meta["best"]["epoch"]
    chosen = train._checkpoint_path(str(out))
    assert runfolder.read_checkpoint(chosen)[1]["epoch"] == meta["best"]["epoch"], chosen


def check_same_as(out, reference_out):
    """After resuming: every file, no temporaries, and the numbers and weights of the uninterrupted run."""
    from PIL import Image
    assert sorted(os.listdir(out)) == sorted(runfolder.RUN_FILES)
    got, want = (json.load(open(o / "metrics.json")) for o in (out, reference_out))
    assert _numbers(got["epochs"]) == _numbers(want["epochs"]) and got["best"] == want["best"]
    for name in ("checkpoint.npz", "best.npz"):
        a, b = msn.load(out / name), msn.load(reference_out / name)
        assert sorted(a) == sorted(b), name
        for key in a:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
        ma, mb = json.loads(str(a["meta"])), json.loads(str(b["meta"]))
        assert ma["epoch"] == mb["epoch"] and _numbers(ma["history"]) == _numbers(mb["history"])
    for png in ("curves.png", "predictions.png"):
        with Image.open(out / png) as im:
            im.load()


def kill_then_resume(tmp_path, reference, kill_at, when):
    out = tmp_path / "run"
    killed = _child(out, CONFIG, kill_at=kill_at, when=when)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    check_consistent(out)
    if (out / "config.json").exists():
        resumed = _child(out, {}, resume=True)
    else:                                  # killed before the run wrote anything: the same command again
        resumed = _child(out, CONFIG)
    assert resumed.returncode == 0, resumed.stderr
    check_same_as(out, reference[0])


def _moments(order):
    """(k, when, what): just before and just after each commit of the reference run."""
    return [(k, when, f"{when} {name} #{k}") for k, name in enumerate(order, 1) for when in ("before", "after")]


# The default suite: the moments the checks above were written against (a kill inside the
# epoch-2 checkpoint save, between it and best.npz/metrics.json, inside a figure write).
@pytest.mark.parametrize("name, nth, when", [
    ("checkpoint.npz", 2, "before"), ("checkpoint.npz", 2, "after"), ("predictions.png", 1, "before"),
])
def test_kill_inside_a_save_then_resume(tmp_path, reference, name, nth, when):
    order = reference[1]
    k = [i for i, n in enumerate(order, 1) if n == name][nth - 1]
    kill_then_resume(tmp_path, reference, k, when)


@pytest.mark.slow
def test_kill_at_every_commit_then_resume(tmp_path, reference):
    for k, when, what in _moments(reference[1]):
        case = tmp_path / what.replace(" ", "_").replace("#", "")
        case.mkdir()
        try:
            kill_then_resume(case, reference, k, when)
        except AssertionError as error:
            raise AssertionError(f"killed {what}: {error}") from None


@pytest.mark.slow
def test_kill_at_random_times_then_resume_even_twice(tmp_path, reference):
    """SIGKILL from outside at random moments (the first kill of each case, then a second kill
    during the resume at one of its commits), then resume to the end."""
    out0 = tmp_path / "timing"
    started = time.perf_counter()
    assert _child(out0, CONFIG).returncode == 0
    duration = time.perf_counter() - started
    rng = random.Random(0)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for case in range(6):
        out = tmp_path / f"case{case}"
        spec = dict(out=str(out), config=CONFIG, resume=False, kill_at=0, when="before")
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        child.send_signal(signal.SIGKILL)
        child.wait()
        check_consistent(out)
        if (out / "config.json").exists():
            again = _child(out, {}, resume=True, kill_at=rng.randint(1, 6), when=rng.choice(["before", "after"]))
            check_consistent(out)
            final = _child(out, {}, resume=True)
        else:
            final = _child(out, CONFIG)
        assert final.returncode == 0, (case, final.stderr, again.returncode if "again" in dir() else None)
        check_same_as(out, reference[0])


# ---- the pieces ----------------------------------------------------------------------------------
def test_atomic_file_leaves_the_old_file_on_error_and_the_new_one_on_success(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with runfolder.atomic_file(path) as f:
            f.write(b"half of the n")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["curves.png"]
    with runfolder.atomic_file(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["curves.png"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask        # as a plain open() would make it


def test_stale_temporaries_of_run_files_are_removed_and_nothing_else(tmp_path):
    names = [".checkpoint.npz.abc123.tmp", ".best.npz.x.tmp", ".predictions.png.q.tmp",   # left by kills
             ".notes.txt.a.tmp", "checkpoint.npz.tmp", "mine.tmp", "checkpoint.npz"]       # not ours to delete
    for name in names:
        (tmp_path / name).write_text("")
    assert runfolder.remove_stale_temporaries(tmp_path) == sorted(names[:3])
    assert sorted(os.listdir(tmp_path)) == sorted(names[3:])


def test_resume_with_nothing_left_to_train_completes_the_files(tmp_path):
    out = train.run(dict(CONFIG, epochs=1), out=str(tmp_path / "r"), progress=False, log=lambda *a: None)
    for name in ("metrics.json", "best.npz", "curves.png", "predictions.png"):
        os.remove(os.path.join(out, name))
    open(os.path.join(out, ".best.npz.zz.tmp"), "w").close()
    lines = []
    train.run({}, out=out, resume=True, progress=False, log=lines.append)
    assert sorted(os.listdir(out)) == sorted(runfolder.RUN_FILES)
    assert "already trained for 1 epochs" in lines[-1] and any(".best.npz.zz.tmp" in line for line in lines)
    assert len(json.load(open(os.path.join(out, "metrics.json")))["epochs"]) == 1


def test_resume_with_more_epochs_recomputes_the_poly_schedule(tmp_path):
    """README: a larger --epochs continues a finished run, the schedule computed for the new
    total, so the poly rate (which had reached 0) rises again at the first new epoch."""
    out = train.run(dict(CONFIG, epochs=1), out=str(tmp_path / "r"), progress=False, log=lambda *a: None)
    assert json.load(open(os.path.join(out, "metrics.json")))["epochs"][0]["lr"] == 0
    train.run({"epochs": 3}, out=out, resume=True, progress=False, log=lambda *a: None)
    epochs = json.load(open(os.path.join(out, "metrics.json")))["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[0]["lr"] == 0 < epochs[1]["lr"] and epochs[2]["lr"] == 0     # risen again, then down to 0


def _interrupt_in_epoch_2_then_resume(config, tmp_path, monkeypatch, processes=None):
    """The run straight through, and the same run interrupted in epoch 2's held-out pass and
    resumed: their checkpoint.npz files."""
    quiet = dict(progress=False, log=lambda *a: None)
    straight = train.run(dict(config), out=str(tmp_path / "straight"), **quiet)
    half = str(tmp_path / "half")
    run_interrupted_in_epoch_2(config, half, monkeypatch, **quiet)
    resume = {"backend": config["backend"]}       # MINISEGNET_BACKEND would win over the run's own
    if processes is not None:
        resume["processes"] = processes
    train.run(resume, out=half, resume=True, **quiet)
    return (msn.load(os.path.join(o, "checkpoint.npz")) for o in (half, straight))


@pytest.mark.parametrize("optimizer, processes", [("sgd", 1), ("sgd", 2), ("adam", 2)])
def test_resume_is_exact_for_each_optimizer_and_process_count(tmp_path, monkeypatch, optimizer, processes):
    """SGD's momentum buffer in two processes was float64 (the gradients were, from a NumPy share),
    saved so, loaded back as float32: the resumed run drifted. Every array equal, dtypes too."""
    config = dict(CONFIG, optimizer=optimizer, processes=processes, backend="numpy")
    resumed, straight = _interrupt_in_epoch_2_then_resume(config, tmp_path, monkeypatch, processes)
    for key in straight:
        if key != "meta":
            assert resumed[key].dtype == straight[key].dtype, key
            np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


def test_resume_restores_the_random_state_dropout_draws_from(tmp_path, monkeypatch):
    """A model with dropout draws from generator() every step: a resume that did not restore the
    saved random state drew other masks in epoch 2 (the U-Net draws nothing, so its resumes could
    not tell)."""
    config = dict(CONFIG, model="fcn32s", model_args=dict(width=4, dropout=0.5))
    resumed, straight = _interrupt_in_epoch_2_then_resume(config, tmp_path, monkeypatch)
    for key in straight:
        if key != "meta":
            np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_stale_temporaries_keep_a_run_files_namesake_that_is_not_a_tmp(tmp_path):
    # guards remove_stale_temporaries' `entry.endswith(".tmp")`: ".checkpoint.npz.<x>" not ending .tmp is kept
    names = [".checkpoint.npz.abc.tmp", ".checkpoint.npz.backup", ".config.json.old"]
    for name in names:
        (tmp_path / name).write_text("")
    assert runfolder.remove_stale_temporaries(tmp_path) == [names[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])


def test_stale_temporaries_leave_a_folder_of_that_name_alone(tmp_path):
    # guards remove_stale_temporaries' `os.path.isfile`: a folder named like a temporary is neither removed nor an error
    (tmp_path / ".metrics.json.d.tmp").mkdir()
    (tmp_path / ".best.npz.e.tmp").write_text("")
    assert runfolder.remove_stale_temporaries(tmp_path) == [".best.npz.e.tmp"]
    assert os.listdir(tmp_path) == [".metrics.json.d.tmp"]


def _meta(**changes):
    """A minimal valid checkpoint record, with ``changes`` (``info=dict(...)``/``config=dict(...)`` update those)."""
    meta = {"format": runfolder.CHECKPOINT_FORMAT, "config": {"model": "unet", "data": "shapes", "size": 32},
            "info": {"num_classes": 2, "in_channels": 3, "class_names": ["a", "b"], "palette": [[0, 0, 0], [255, 9, 9]]},
            "epoch": 2, "history": [{}, {}], "best": {"epoch": 2}}
    for key, value in changes.items():
        meta[key] = dict(meta[key], **value) if key in ("info", "config") and value is not None else value
    return meta


def _write(tmp_path, meta, as_array=None):
    path = str(tmp_path / "ck.npz")
    msn.save({"w": np.ones(2), "meta": np.array(json.dumps(meta)) if as_array is None else as_array}, path)
    return path


@pytest.mark.parametrize("changes", [dict(), dict(epoch=0, history=[], best=None), dict(best={"epoch": 1})],
                         ids=["valid", "epoch-0-no-best", "best-1"])
def test_a_valid_record_is_read(tmp_path, changes):
    # guards the lower/upper bounds of _checked_meta: epoch 0 (nothing trained yet) and best in [1, epoch] pass
    meta = _meta(**changes)
    assert runfolder.read_meta(_write(tmp_path, meta)) == meta
    assert runfolder.checkpoint_epoch(_write(tmp_path, meta)) == meta["epoch"]


@pytest.mark.parametrize("changes, words", [
    (dict(epoch=-1, history=[], best=None), r"meta\['epoch'\] .* should be 0 or more, got -1"),
    (dict(epoch=True), r"meta\['epoch'\] should be a JSON integer, got bool"),
    (dict(best={"epoch": 0}), r"meta\['best'\] should be null or a JSON object whose 'epoch' is an integer from 1"),
    (dict(best={"epoch": 3}), r"meta\['best'\] should be null .* from 1 to the checkpoint's epoch \(2\)"),
    (dict(info=dict(num_classes=0)), r"meta\['info'\]\['num_classes'\] should be a positive integer, got 0"),
    (dict(info=dict(num_classes=3)), r"meta\['info'\]\['palette'\] should be a list of at least num_classes \(3\)"),
    (dict(info=dict(palette=[[0, 0, 0], [0, 0, 256]])), r"meta\['info'\]\['palette'\] should be a list"),
    (dict(info=dict(palette=[[0, 0, 0], [0, 0, 0, 0]])), r"meta\['info'\]\['palette'\] should be a list"),
    (dict(format="minisegnet-checkpoint-0"), r"has checkpoint format 'minisegnet-checkpoint-0'"),
    (dict(history=[{}, []]), r"meta\['history'\] should hold one JSON object per epoch; item 1 is \[\]"),
    (dict(drop=("config", "size")), r"meta\['config'\] lacks 'size'"),
    (dict(drop=("info", "in_channels")), r"meta\['info'\] lacks 'in_channels'"),
], ids=["epoch-minus-1", "epoch-bool", "best-0", "best-after-epoch", "num-classes-0", "palette-one-short",
        "colour-256", "colour-of-4", "format", "history-list-item", "config-no-size", "info-no-in-channels"])
def test_a_record_of_the_wrong_kind_is_refused_at_its_boundary(tmp_path, changes, words):
    # guards each check of _checked_meta just past its boundary (the CLI tests use far-off values)
    changes = dict(changes)
    drop = changes.pop("drop", None)
    meta = _meta(**changes)
    if drop:
        del meta[drop[0]][drop[1]]
    path = _write(tmp_path, meta)
    with pytest.raises(runfolder.CheckpointError, match=words):
        runfolder.read_meta(path)
    with pytest.raises(runfolder.CheckpointError, match=words):
        runfolder.read_checkpoint(path)
    assert runfolder.checkpoint_epoch(path) is None


def test_a_meta_entry_that_is_a_list_of_texts_is_refused(tmp_path):
    # guards _checked_meta's ndim check: meta must be a 0-d string array, not [json]
    path = _write(tmp_path, None, as_array=np.array([json.dumps(_meta())]))
    with pytest.raises(runfolder.CheckpointError, match=r"its 'meta' entry should be a JSON text, got <U\d+ of shape \(1,\)"):
        runfolder.read_meta(path)
