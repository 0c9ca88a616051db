"""run_config.py on its own: resolving a run's settings, each check at its boundary (cases from a mutation review, stop 38: each fails on a mutant that every test before let through; the CLI's runs are in test_train_cli.py)."""
import os

import numpy as np
import pytest

from minisegnet.data.toy import MIN_SIZE
from minisegnet.run_config import UserError, _choose_backend, check_out_folder, resolve_config


def test_toy_data_takes_exactly_its_minimum_size():
    # guards the --size bound for built-in data: MIN_SIZE itself is allowed, one less is refused
    assert resolve_config({"size": MIN_SIZE})["size"] == MIN_SIZE
    with pytest.raises(UserError, match=f"--size must be at least {MIN_SIZE} pixels"):
        resolve_config({"size": MIN_SIZE - 1})


@pytest.mark.parametrize("lr", [0, 0.0])
def test_a_zero_learning_rate_is_refused(lr):
    # guards "--lr must be a positive number": 0 would train nothing, silently
    with pytest.raises(UserError, match="--lr must be a positive number"):
        resolve_config({"lr": lr})


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0])
def test_val_fraction_must_lie_strictly_between_0_and_1(fraction):
    # guards both open ends: no validation images, or no training images
    with pytest.raises(UserError, match="val_fraction must be between 0 and 1"):
        resolve_config({"val_fraction": fraction})


def test_processes_may_not_exceed_the_cpus(monkeypatch):
    # guards the --processes CPU bound: one more process than CPUs is refused, as many as CPUs is not
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert resolve_config({"processes": 2, "batch_size": 8})["processes"] == 2
    with pytest.raises(UserError, match="more than this machine's 2 CPUs"):
        resolve_config({"processes": 3, "batch_size": 8})


def test_folder_thing_classes_are_sorted_and_take_class_zero(tmp_path):
    # guards --thing-classes parsing for folder data: order does not matter, 0 is a class number like any
    assert resolve_config({"data": str(tmp_path), "thing_classes": "2,1"})["thing_classes"] == [1, 2]
    assert resolve_config({"data": str(tmp_path), "thing_classes": [3, 0]})["thing_classes"] == [0, 3]


def test_folder_thing_classes_named_twice_are_refused(tmp_path):
    # guards the repeated-class check: "1,1" is a typo, not one class
    with pytest.raises(UserError, match="--thing-classes 1,1 names class 1 twice"):
        resolve_config({"data": str(tmp_path), "thing_classes": "1,1"})


@pytest.mark.parametrize("task, model", [("semantic", "panoptic-deeplab"), ("panoptic", "unet")])
def test_a_model_of_another_task_is_refused(task, model):
    # guards the task/model check in resolve_config (train.run reaches it without the CLI's parser)
    with pytest.raises(UserError, match=f"--model '{model}' is not a model of --task {task}"):
        resolve_config({"task": task, "model": model})


def test_a_relative_data_folder_is_kept_as_an_absolute_path(tmp_path, monkeypatch):
    # guards abspath on --data: evaluate, predict and --resume must find the folder from anywhere
    (tmp_path / "images").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_config({"data": "images"})["data"] == str(tmp_path / "images")


def test_the_backend_variable_is_read_case_and_space_insensitively(monkeypatch):
    # guards MINISEGNET_BACKEND's normalisation: " NumPy " means numpy
    monkeypatch.setenv("MINISEGNET_BACKEND", " NumPy ")
    assert resolve_config({})["backend"] == "numpy"


def test_the_backend_variable_outranks_a_resumed_runs_own(monkeypatch):
    # guards _choose_backend's documented order: --backend, else MINISEGNET_BACKEND, else the saved run's
    monkeypatch.setenv("MINISEGNET_BACKEND", "numpy")
    assert _choose_backend(None, saved="cupy") == "numpy"
    assert _choose_backend("cupy", saved="numpy") == "cupy"
    monkeypatch.delenv("MINISEGNET_BACKEND")
    assert _choose_backend(None, saved="cupy") == "cupy"


def test_a_folder_that_may_be_written_but_not_entered_is_refused(tmp_path, monkeypatch):
    # guards check_out_folder's X_OK: without search permission on a folder no file can be made inside
    monkeypatch.setattr(os, "access", lambda path, mode: not mode & os.X_OK)   # writable, not searchable
    with pytest.raises(UserError, match="may not write into"):
        check_out_folder(tmp_path / "run")


def test_thing_classes_for_built_in_data_must_be_its_own():
    # guards the built-in data check: shapes' thing classes are 1,2,3; another list is refused, its own kept
    with pytest.raises(UserError, match="the built-in shapes data's thing classes are 1,2,3"):
        resolve_config({"data": "shapes", "thing_classes": "1"})
    assert resolve_config({"data": "shapes", "thing_classes": "3,2,1"})["thing_classes"] == [1, 2, 3]


def test_resolve_config_takes_the_backend_from_the_environment(monkeypatch):
    # guards resolve_config's backend default: MINISEGNET_BACKEND when --backend is not given (no CuPy needed to name it)
    monkeypatch.setenv("MINISEGNET_BACKEND", "cupy")
    assert resolve_config({})["backend"] == "cupy"
    assert resolve_config({"backend": "numpy"})["backend"] == "numpy"


def test_an_unknown_option_is_refused_naming_it():
    # a typo ({"epoch": 1} for {"epochs": 1}) was kept silently and the run trained the default 12 epochs
    with pytest.raises(UserError, match="epoch"):
        resolve_config({"epoch": 1})


@pytest.mark.parametrize("fraction", ["0.2", None])
def test_val_fraction_that_is_not_a_number_is_a_user_error(fraction):
    # was a bare TypeError ('<' not supported between instances of 'int' and 'str'), which the CLI
    # does not catch as a UserError
    with pytest.raises(UserError, match="val_fraction"):
        resolve_config({"val_fraction": fraction})


def test_a_boolean_learning_rate_is_refused():
    # True passed "a positive number" (bool is an int) and trained at lr 1; --epochs True is refused
    with pytest.raises(UserError, match="--lr must be a positive number"):
        resolve_config({"lr": True})


def test_a_boolean_weight_decay_or_momentum_is_refused():
    for key in ("weight_decay", "momentum"):
        with pytest.raises(UserError, match=f"--{key.replace('_', '-')} must be a non-negative number"):
            resolve_config({key: True})


def test_a_recorded_configuration_keeps_only_the_options_this_version_takes():
    # config.json also records out, and an older version's may record an option since removed:
    # resuming or evaluating such a run must not trip the unknown-option check
    from minisegnet.run_config import recorded_options

    saved = dict(resolve_config({"epochs": 2}), out="/tmp/run", old_option=3)
    kept = recorded_options(saved)
    assert "out" not in kept and "old_option" not in kept and kept["epochs"] == 2
    assert resolve_config(kept)["epochs"] == 2


def test_a_numpy_integer_seed_is_taken_as_the_other_integer_options_are():
    import numpy as np

    config = resolve_config({"seed": np.int64(3), "epochs": np.int32(2)})
    assert config["seed"] == 3 and type(config["seed"]) is int


def test_numpy_float_learning_rate_weight_decay_and_momentum_are_numbers():
    """A NumPy float (e.g. read from an .npz or a sweep's np.linspace) is a number, as a NumPy int is."""
    config = resolve_config({"lr": np.float32(0.01), "weight_decay": np.float64(1e-4), "momentum": np.float64(0.5),
                             "val_fraction": np.float64(0.25)})
    assert config["lr"] == np.float32(0.01) and config["weight_decay"] == 1e-4 and config["momentum"] == 0.5

