"""Data parallelism (minisegnet/data_parallel.py): several processes share a training step.

The workers are real processes (``spawn``), so the functions they run are
module-level here (a worker imports this module to find them).
"""
import json
import multiprocessing
import multiprocessing.context
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import data_parallel, parallel, train
from minisegnet import functional as F
from minisegnet.models import UNet
from helpers import shared_memory_blocks


TINY_RUN = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
                model_args=dict(base_channels=4, depth=2), backend="numpy")
QUIET = dict(progress=False, log=lambda *a: None)


def loss_of(model, images, targets):
    outputs = model(msn.tensor(images))
    return outputs, F.cross_entropy(outputs, msn.tensor(targets))


def dict_loss_of(model, images, targets):
    """Outputs and targets as dicts of batch-first arrays, as the instance and panoptic tasks have them."""
    outputs = model(msn.tensor(images))
    return {"logits": outputs}, F.cross_entropy(outputs, msn.tensor(targets["masks"]))


def fails_on_three_images(model, images, targets):
    if len(images) == 3:
        raise ValueError("this slice has three images")
    return loss_of(model, images, targets)


def fails_on_nan_images(model, images, targets):
    if np.isnan(images).any():
        raise ValueError("NaN in the images")
    return loss_of(model, images, targets)


def fails_on_nan_else_sleeps(model, images, targets):
    """This process's slice fails at once; the worker's is still busy a minute later."""
    if np.isnan(images).any():
        raise ValueError("NaN in the images")
    time.sleep(60)
    return loss_of(model, images, targets)


@pytest.fixture(autouse=True)
def _on_numpy():
    """Data parallelism is for the CPU: these tests build their models on NumPy in either session
    (and leave the session's backend as they found it: the next file's module fixtures may read it)."""
    session = msn.backend.get_backend()
    msn.set_backend("numpy")
    yield
    msn.set_backend(session)


def _model():
    msn.manual_seed(0)
    return UNet(3, 4, base_channels=4, depth=2, padding="same")


def _batch(n=5, size=16):
    rng = np.random.default_rng(1)
    return rng.random((n, 3, size, size), dtype=np.float32), rng.integers(0, 4, (n, size, size))


def _workers():
    """The worker processes alive now (the module's shared ``two`` has one of its own)."""
    return {p.pid for p in multiprocessing.active_children()}


def _grads(model):
    return [p.grad.data.copy() for p in model.parameters()]


@pytest.fixture(scope="module")
def two():
    """A two-process step on ``_model()`` (started once: each start spawns a worker)."""
    msn.set_backend("numpy")                       # (module fixtures run before _on_numpy)
    model = _model()
    with data_parallel.DataParallel(model, loss_of, 2) as step:
        yield model, step


def test_two_processes_give_the_one_process_step(two):
    model, step = two
    images, targets = _batch(5)                    # slices of 3 and 2 images: unequal weights
    one_outputs, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    one_grads = _grads(model)
    outputs, loss = step.step(images, targets)
    assert outputs.shape == one_outputs.shape
    np.testing.assert_allclose(outputs.numpy(), one_outputs.numpy(), rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(one_loss, rel=1e-6)
    for g, expected in zip(_grads(model), one_grads):
        np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
        assert g.dtype == expected.dtype        # float32 (the share was a NumPy float64, and made them float64)


def test_the_workers_train_the_weights_they_are_sent(two):
    model, step = two
    images, targets = _batch(4)
    optimizer = msn.optim.SGD(model.parameters(), lr=0.5)
    step.step(images, targets)
    optimizer.step()                               # new weights here: the next step must use them
    _, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    one_grads = _grads(model)
    _, loss = step.step(images, targets)
    assert loss == pytest.approx(one_loss, rel=1e-6)
    for g, expected in zip(_grads(model), one_grads):
        np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_the_held_out_pass_is_shared_with_the_current_weights_in_eval_mode(two):
    model, step = two
    images, targets = _batch(5)
    optimizer = msn.optim.SGD(model.parameters(), lr=0.5)
    step.step(images, targets)
    optimizer.step()                               # weights the worker has not seen yet
    model.train()
    outputs = step.forward(images)
    assert model.training and not outputs.requires_grad
    expected = data_parallel.OneProcess(model, loss_of).forward(images)
    np.testing.assert_allclose(outputs.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    _, loss = step.step(images, targets)           # and the workers train again after it
    _, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    assert loss == pytest.approx(one_loss, rel=1e-6)


class _DropoutNet(msn.nn.Module):
    def __init__(self):
        self.conv = msn.nn.Conv2d(3, 4, 1)
        self.drop = msn.nn.Dropout2d(0.5)

    def forward(self, x):
        return self.drop(self.conv(x))


def test_a_workers_dropout_numbers_follow_the_epoch():
    """set_epoch(e) reseeds each worker from (seed, e, worker): the same epoch draws the same masks
    again, another epoch others (a reseed that ignored the epoch passed the resume test, whose
    two runs draw alike either way)."""
    msn.manual_seed(0)
    model = _DropoutNet()
    images, targets = _batch(4)
    losses = []
    with data_parallel.DataParallel(model, loss_of, 2) as step:
        for epoch in (0, 1, 0):
            step.set_epoch(epoch)
            msn.manual_seed(0)                     # this process's slice draws the same masks each time
            losses.append(step.step(images, targets)[1])
    assert losses[2] == losses[0] and losses[1] != losses[0]


def test_the_workers_run_the_held_out_pass_in_eval_mode():
    msn.manual_seed(0)
    model = _DropoutNet()
    images, _ = _batch(4)
    with data_parallel.DataParallel(model, loss_of, 2) as shared:
        first, again = shared.forward(images), shared.forward(images)
    np.testing.assert_array_equal(first.numpy(), again.numpy())      # no dropout: eval mode everywhere
    model.eval()
    np.testing.assert_allclose(first.numpy(), model(msn.tensor(images)).numpy(), rtol=1e-6, atol=1e-7)


def test_a_batch_smaller_than_the_processes_leaves_workers_idle():
    model = _model()
    images, targets = _batch(2)
    _, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    with data_parallel.DataParallel(model, loss_of, 3) as step:
        outputs, loss = step.step(images[:1], targets[:1])          # one image, three processes
        assert outputs.shape[0] == 1
        outputs, loss = step.step(images, targets)
    assert outputs.shape[0] == 2 and loss == pytest.approx(one_loss, rel=1e-6)


def test_dict_targets_and_outputs_are_cut_and_joined_by_image():
    """Outputs joined by image, and each slice's targets cut by the same rows as its images: the
    loss and gradients are the one-process step's (outputs alone never see the targets, so a
    worker given the wrong rows of targets passed the outputs' check)."""
    model = _model()
    images, masks = _batch(4)
    _, one_loss = data_parallel.OneProcess(model, dict_loss_of).step(images, {"masks": masks})
    one_grads = _grads(model)
    with data_parallel.DataParallel(model, dict_loss_of, 2) as step:
        outputs, loss = step.step(images, {"masks": masks})
    expected, _ = dict_loss_of(model, images, {"masks": masks})
    assert set(outputs) == {"logits"}
    np.testing.assert_allclose(outputs["logits"].numpy(), expected["logits"].numpy(), rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(one_loss, rel=1e-6)
    for got, want in zip(_grads(model), one_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_an_error_in_a_worker_is_raised_here_with_its_traceback():
    images, targets = _batch(7)                    # slices of 4 and 3: the worker has three images
    blocks = shared_memory_blocks()
    step = data_parallel.DataParallel(_model(), fails_on_three_images, 2)
    workers = list(step.workers)
    with pytest.raises(RuntimeError, match="failed in a worker process") as error:
        step.step(images, targets)
    assert "this slice has three images" in str(error.value) and "Traceback" in str(error.value)
    assert step.workers == []                      # stopped, and says so if used again
    assert shared_memory_blocks(*workers) == blocks             # and no shared memory is left behind
    with pytest.raises(RuntimeError, match="closed"):
        step.step(images, targets)


def test_an_error_here_stops_the_workers_at_once():
    """A worker still busy with its slice is terminated, not waited for (close() waits up to 10 s
    for an idle one to stop; with a slice of a few milliseconds no wait could be told apart)."""
    images, targets = _batch(4)
    images[0] = np.nan                             # in this process's slice only
    before, blocks = _workers(), shared_memory_blocks()
    step = data_parallel.DataParallel(_model(), fails_on_nan_else_sleeps, 2)
    workers = list(step.workers)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="NaN in the images"):
        step.step(images, targets)
    assert time.perf_counter() - start < 5
    assert step.workers == [] and _workers() == before
    assert shared_memory_blocks(*workers) == blocks             # the worker, terminated mid-step, removed its own
    with pytest.raises(RuntimeError, match="closed"):
        step.step(images, targets)                 # no stale answer can be read by a later step


def test_a_dead_worker_is_a_clear_error():
    images, targets = _batch(4)
    step = data_parallel.DataParallel(_model(), loss_of, 2)
    step.workers[0].terminate()
    step.workers[0].join()
    with pytest.raises(RuntimeError, match="a worker process has stopped.*processes=1"):
        step.step(images, targets)
    assert step.workers == []


def test_a_killed_worker_leaves_no_shared_memory():
    """A worker killed outright (no chance to clean up) after answering a step: its block
    is removed by close() here."""
    import signal

    images, targets = _batch(4)
    blocks = shared_memory_blocks()
    step = data_parallel.DataParallel(_model(), loss_of, 2)
    step.step(images, targets)
    worker = step.workers[0]
    assert (any(name.startswith(f"msn{worker.pid}_") for name in shared_memory_blocks(worker) - blocks)
            or not os.path.isdir("/dev/shm"))                  # the worker's block, named after it
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    step.close()
    assert shared_memory_blocks(worker) == blocks


def test_bad_settings_are_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="processes must be an integer of at least 2, got 1"):
        data_parallel.DataParallel(_model(), loss_of, 1)
    with pytest.raises(TypeError, match="shared_memory must be True or False, got 'no'"):
        data_parallel.DataParallel(_model(), loss_of, 2, shared_memory="no")
    msn.manual_seed(0)
    with pytest.raises(ValueError, match="BatchNorm"):
        data_parallel.DataParallel(UNet(3, 4, base_channels=4, depth=2, batch_norm=True), loss_of, 2)


def test_a_loss_that_cannot_be_sent_to_a_worker_is_a_clear_error():
    def local_loss_of(model, images, targets):            # not importable by a worker
        return loss_of(model, images, targets)
    with pytest.raises(ValueError, match="cannot send the model and loss_of to a worker process"):
        data_parallel.DataParallel(_model(), local_loss_of, 2)


def test_one_thread_holds_the_pool_and_openblas_and_restores_them_after_an_error():
    before = parallel.get_num_threads()
    blas = parallel.find_openblas()
    blas_before = [get() for get, _ in blas]
    with pytest.raises(KeyError):
        with parallel.one_thread():
            assert parallel.get_num_threads() == 1
            assert all(get() == 1 for get, _ in blas)
            raise KeyError("inside")
    assert parallel.get_num_threads() == before
    assert [get() for get, _ in blas] == blas_before


def test_the_trainer_chooses_two_processes_only_where_they_apply(monkeypatch):
    plain, normed = _model(), UNet(3, 4, base_channels=4, depth=2, batch_norm=True)
    task, void_task = SimpleNamespace(ignore_index=None), SimpleNamespace(ignore_index=255)
    config = dict(train.DEFAULTS, backend="numpy", processes=None)
    monkeypatch.setattr(parallel, "get_num_threads", lambda: 2)
    assert data_parallel.processes_for(config, plain, task) == 2
    assert data_parallel.processes_for(config, normed, task) == 1
    assert data_parallel.processes_for(config, plain, void_task) == 1
    assert data_parallel.processes_for(dict(config, batch_size=1), plain, task) == 1
    assert data_parallel.processes_for(dict(config, backend="cupy"), plain, task) == 1
    assert data_parallel.processes_for(dict(config, processes=np.int64(3)), plain, task) == 3
    for threads in (1, 4):                         # two cores measured; one thread asks for one process
        monkeypatch.setattr(parallel, "get_num_threads", lambda: threads)
        assert data_parallel.processes_for(config, plain, task) == 1
    with pytest.raises(train.UserError, match="--processes 2: this model has BatchNorm"):
        data_parallel.processes_for(dict(config, processes=2), normed, task)
    with pytest.raises(train.UserError, match="--processes 2: .* on the CPU .numpy. only; --backend cupy"):
        data_parallel.processes_for(dict(config, processes=2, backend="cupy"), plain, task)


def test_a_run_on_two_processes_matches_one_process(tmp_path):
    config = dict(TINY_RUN, epochs=1)
    runs, before = {}, _workers()
    for processes in (1, 2):
        out = train.run(dict(config, processes=processes), out=str(tmp_path / str(processes)), **QUIET)
        assert _workers() == before                             # the worker was stopped
        record = json.load(open(os.path.join(out, "config.json")))
        assert record["config"]["processes"] == processes
        runs[processes] = json.load(open(os.path.join(out, "metrics.json")))["epochs"][0]
    assert runs[2]["train_loss"] == pytest.approx(runs[1]["train_loss"], rel=1e-4)
    assert runs[2]["val_loss"] == pytest.approx(runs[1]["val_loss"], rel=1e-4)


def test_no_worker_outlives_a_run_that_stops_early(tmp_path, monkeypatch):
    config = dict(TINY_RUN, processes=2)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "evaluate", interrupt)              # Ctrl-C after the first epoch's steps
    before = _workers()
    with pytest.raises(KeyboardInterrupt):
        train.run(config, out=str(tmp_path / "interrupted"), **QUIET)
    assert _workers() == before


def test_a_script_without_a_main_guard_fails_at_once_and_says_why(tmp_path):
    """A worker imports the script that started it; an unguarded script starts training again there,
    and the worker dies. The parent must say so, not hang (it once did, inside ``start()``)."""
    script = tmp_path / "unguarded.py"
    script.write_text("from minisegnet import train\n"
                      "train.run(dict(size=32, num_train=16, num_val=8, epochs=1, batch_size=8, processes=2,\n"
                      "               backend='numpy'), out='run', progress=False, log=lambda line: None)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, MINISEGNET_BACKEND="numpy"))
    assert done.returncode != 0
    assert "a worker process has stopped" in done.stderr and "if __name__ == '__main__'" in done.stderr


def test_a_model_on_the_gpu_is_refused(cupy):
    msn.set_backend("cupy")
    try:
        model = _model()
    finally:
        msn.set_backend("numpy")        # module fixtures of the next test file run before the reset
    with pytest.raises(ValueError, match="must be NumPy arrays"):
        data_parallel.DataParallel(model, loss_of, 2)


def test_a_two_process_run_with_dropout_resumes_exactly(tmp_path):
    """The workers' dropout numbers are reseeded from (seed, epoch, worker) at each epoch, so a run
    stopped after epoch 1 and resumed ends bit for bit as the uninterrupted one (they were seeded
    once when the workers started, so the resumed epoch 2 drew epoch 1's masks again)."""
    config = dict(TINY_RUN, model="fcn8s", model_args=dict(width=4), processes=2)   # fc6, fc7: dropout 0.5
    straight = train.run(dict(config), out=str(tmp_path / "straight"), **QUIET)

    def stop_after_epoch_1(message):
        if message.startswith("epoch 1/"):
            raise KeyboardInterrupt
    out = str(tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        train.run(dict(config), out=out, progress=False, log=stop_after_epoch_1)
    train.run({"processes": 2, "backend": "numpy"}, out=out, resume=True, **QUIET)
    a, b = (msn.load(os.path.join(d, "checkpoint.npz")) for d in (straight, out))
    assert sorted(a) == sorted(b)
    for key in a:
        if key != "meta":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    history = [json.loads(str(ck["meta"]))["history"] for ck in (a, b)]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in history[0]] == \
        [{k: v for k, v in h.items() if k != "seconds"} for h in history[1]]


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_a_negative_seed_is_refused_with_its_own_message():
    # guards DataParallel's `seed < 0` check (SeedSequence's own error is not the message users get)
    msn.manual_seed(0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        data_parallel.DataParallel(_DropoutNet(), loss_of, 2, seed=-1)


def test_a_new_data_parallel_draws_epoch_0s_numbers_without_set_epoch():
    # guards the worker's first manual_seed(worker_seed(seed, 0, k)): "a new DataParallel starts at epoch 0"
    images, targets = _batch(4, 8)
    losses = []
    for call_set_epoch in (False, True):
        msn.manual_seed(0)
        model = _DropoutNet()
        with data_parallel.DataParallel(model, loss_of, 2, seed=3) as step:
            if call_set_epoch:
                step.set_epoch(0)
            msn.manual_seed(0)                 # this process's slice draws the same masks both times
            losses.append(step.step(images, targets)[1])
    assert losses[0] == losses[1]


def test_the_held_out_pass_puts_an_eval_model_back_in_eval_mode():
    # guards OneProcess.forward restoring the mode it found (not always training)
    msn.manual_seed(0)
    model = _DropoutNet()
    images, _ = _batch(4, 8)
    model.eval()
    data_parallel.OneProcess(model, loss_of).forward(images)
    assert not model.training
    model.train()
    data_parallel.OneProcess(model, loss_of).forward(images)
    assert model.training


@pytest.mark.parametrize("frozen", ["whole model", "dropout only"])
def test_a_step_keeps_the_models_eval_modes_in_the_workers(frozen):
    """OneProcess steps the model in the modes it is in (a model in eval mode, or a Dropout put in
    eval mode to switch it off, draws no masks); the workers must too. They called model.train()
    once at start (data_parallel._serve), so their slices were dropped out while this process's
    slice was not: loss and gradients then differ from the one-process step by whole percents."""
    msn.manual_seed(0)
    model = _DropoutNet()
    (model if frozen == "whole model" else model.drop).eval()
    images, targets = _batch(4)
    _, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    one_grads = _grads(model)
    with data_parallel.DataParallel(model, loss_of, 2) as step:
        _, loss = step.step(images, targets)
    assert loss == pytest.approx(one_loss, rel=1e-6)
    for got, want in zip(_grads(model), one_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())


def test_a_ctrl_c_while_a_worker_starts_does_not_kill_it(monkeypatch):
    """Ctrl-C in a terminal reaches the whole process group, workers included. A worker ignores it
    (the parent stops it), but only once _worker runs: SIGINT during its start-up (the spawned
    interpreter importing minisegnet, about half a second) killed it with a KeyboardInterrupt
    traceback on the user's terminal. Here SIGINT reaches the worker right after it is started."""
    real_start = multiprocessing.context.SpawnProcess.start

    def start_then_interrupt(process):
        real_start(process)
        os.kill(process.pid, signal.SIGINT)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start_then_interrupt)
    msn.manual_seed(0)
    model = _DropoutNet()
    model.drop.p = 0.0                             # no dropout: the two steps draw nothing
    images, targets = _batch(4)
    _, one_loss = data_parallel.OneProcess(model, loss_of).step(images, targets)
    with data_parallel.DataParallel(model, loss_of, 2) as step:
        monkeypatch.undo()
        _, loss = step.step(images, targets)      # was: "a worker process has stopped"
        assert step.workers[0].is_alive()
    assert loss == pytest.approx(one_loss, rel=1e-6)


def test_the_held_out_pass_gives_each_layer_its_own_mode_back():
    """After the held-out pass (eval mode), a layer that was in eval() before stays in eval(): the
    pass restored the whole model to the top module's mode, so a Dropout switched off by hand
    was training again in the next step."""
    model = _DropoutNet()
    model.drop.eval()
    data_parallel.OneProcess(model, loss_of).forward(_batch(2)[0])
    assert model.training and not model.drop.training


def test_an_empty_batch_is_a_clear_error_and_keeps_the_workers(two):
    """A batch of 0 images was a bare ZeroDivisionError (its share n_k / N) that also stopped the
    workers."""
    model, step = two
    images, targets = _batch(0)
    for call in (lambda: step.step(images, targets), lambda: step.forward(images)):
        with pytest.raises(ValueError, match="the batch has no images"):
            call()
    assert all(w.is_alive() for w in step.workers)
