"""Checkpoints: round trip, atomic replacement, truncated/corrupt/foreign files refused."""
import builtins
import inspect
import io as stdlib_io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import io


def _state():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(4),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "flag": np.array(True),
        "meta": np.array(json.dumps({"epoch": 3, "name": "ü"})),
    }


def test_round_trip_keeps_values_dtypes_and_shapes(tmp_path):
    path = tmp_path / "ck.npz"
    state = _state()
    state["tensor"] = msn.tensor(np.arange(6.0).reshape(2, 3))
    msn.save(state, path)
    back = msn.load(path)
    assert list(back) == list(state)
    for k, v in state.items():
        v = v.numpy() if isinstance(v, msn.Tensor) else v
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v)
    assert json.loads(str(back["meta"]))["name"] == "ü"
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]   # no temporary file left behind


def test_exact_path_is_used(tmp_path):
    msn.save({"a": np.ones(2)}, tmp_path / "model.ckpt")
    assert (tmp_path / "model.ckpt").exists() and not (tmp_path / "model.ckpt.npz").exists()


def test_save_and_load_take_torchs_argument_names(torch, tmp_path):
    """torch.save(obj, f) and torch.load(f): the same names, so keyword calls work here too."""
    path = tmp_path / "kw.npz"
    assert list(inspect.signature(torch.save).parameters)[:2] == list(inspect.signature(msn.save).parameters)
    assert list(inspect.signature(torch.load).parameters)[:1] == list(inspect.signature(msn.load).parameters)
    msn.save(obj={"a": np.arange(3)}, f=path)
    np.testing.assert_array_equal(msn.load(f=path)["a"], np.arange(3))
    with open(path, "rb") as handle, pytest.raises(TypeError, match="f must be a path"):
        msn.load(handle)                            # torch takes a file object; here it is a clear error


def test_truncated_file_refused_and_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "ck.npz"
    msn.save(_state(), path)
    good = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        msn.load(truncated)
    # a save that fails half-way (an unsaveable entry) must not touch the previous file
    with pytest.raises(TypeError, match="'bad'"):
        msn.save({"w": np.zeros(3), "bad": np.array([object()], dtype=object)}, path)
    assert path.read_bytes() == good
    np.testing.assert_array_equal(msn.load(path)["conv.bias"], _state()["conv.bias"])
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "truncated.npz"]


def test_a_save_that_fails_after_writing_a_member_leaves_the_previous_file(tmp_path, monkeypatch):
    """The failure above comes before any file is opened; this one after the first member is
    written (a save straight to the path, not through a temporary file, passed the one above)."""
    path = tmp_path / "ck.npz"
    msn.save(_state(), path)
    good = path.read_bytes()
    real, calls = np.lib.format.write_array, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)
    monkeypatch.setattr(np.lib.format, "write_array", second_fails)
    with pytest.raises(OSError, match="disk full"):
        msn.save({"w": np.zeros(3), "v": np.zeros(3)}, path)
    assert len(calls) == 2 and path.read_bytes() == good and sorted(os.listdir(tmp_path)) == ["ck.npz"]


def test_crash_during_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    msn.save({"a": np.ones(3)}, path)

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match=r"save: cannot write '.*ck.npz' \(disk full\)"):
        msn.save({"a": np.zeros(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(msn.load(path)["a"], np.ones(3))
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]


def test_corrupt_member_refused(tmp_path):
    path = tmp_path / "ck.npz"
    msn.save({"a": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[200:260] = b"x" * 60      # inside the stored array: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="ck.npz"):
        msn.load(path)


@pytest.mark.parametrize("kind", ["text", "pickle", "npy", "empty"])
def test_foreign_files_refused_naming_the_path(tmp_path, kind):
    path = tmp_path / f"foreign_{kind}.npz"
    if kind == "text":
        path.write_text("hello, not a checkpoint")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"a": np.ones(2)}))
    elif kind == "npy":
        np.save(open(path, "wb"), np.ones(3))
    else:
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=f"foreign_{kind}.npz"):
        msn.load(path)


def test_pickled_member_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))   # numpy pickles object arrays
    with pytest.raises(ValueError, match=r"objects\.npz.*'a\.npy' holds pickled Python objects"):
        msn.load(path)                                     # refused by its dtype, before any read


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        msn.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="no_dir"):
        msn.save({"a": np.ones(1)}, tmp_path / "no_dir" / "x.npz")
    with pytest.raises(TypeError, match="dict"):
        msn.save([np.ones(1)], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys"):
        msn.save({1: np.ones(1)}, tmp_path / "x.npz")


def test_model_state_dict_round_trip(tmp_path):
    from minisegnet import nn
    from minisegnet.nn.module import Parameter

    class Tiny(nn.Module):
        def __init__(self):
            self.w = Parameter(np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32))
            self.b = Parameter(np.zeros(3, dtype=np.float32))

    a, b = Tiny(), Tiny()
    b.w.data[...] = 0
    msn.save(a.state_dict(), tmp_path / "t.npz")
    b.load_state_dict(msn.load(tmp_path / "t.npz"))
    np.testing.assert_array_equal(b.w.numpy(), a.w.numpy())


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027])
def test_saved_files_get_the_permissions_of_a_plain_file(tmp_path, umask):
    """A checkpoint (and any run file) is created as open() creates a file, 0666 less the
    umask, not private (0600) as a temporary file from tempfile.mkstemp would leave it."""
    from minisegnet import io, runfolder

    def mode(name):
        return os.stat(tmp_path / name).st_mode & 0o777

    previous = os.umask(umask)
    try:
        open(tmp_path / "plain", "wb").close()
        msn.save({"a": np.ones(2)}, tmp_path / "checkpoint.npz")
        assert mode("plain") == 0o666 & ~umask
        assert mode("checkpoint.npz") == mode("plain")
        assert runfolder.atomic_file is io.atomic_file            # one atomic-write helper for the library
        with io.atomic_file(tmp_path / "curves.png") as f:
            f.write(b"png")
        assert mode("curves.png") == mode("plain")
    finally:
        os.umask(previous)


def test_keys_named_like_savez_arguments_round_trip_and_a_folder_is_refused(tmp_path):
    state = {"allow_pickle": np.ones(3), "file": np.arange(2), "w": np.zeros(1)}   # np.savez would eat these
    msn.save(state, tmp_path / "ck.npz")
    loaded = msn.load(tmp_path / "ck.npz")
    assert sorted(loaded) == ["allow_pickle", "file", "w"]
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)
    with pytest.raises(IsADirectoryError, match="is a folder; give a file name"):
        msn.save(state, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]           # nothing written, no temporary left


def test_member_named_npy_without_an_npy_header_refused(tmp_path):
    # np.load hands back the raw bytes of such a member; load refuses it, naming the file and member
    path = tmp_path / "raw.npz"
    _archive(path, {"a.npy": np.ones(3), "b.npy": b"just some bytes, no magic"})
    with pytest.raises(ValueError, match=r"raw\.npz.*'b\.npy'.*not an \.npy array"):
        msn.load(path)


def _archive(path, members):
    """An archive at ``path`` holding ``members`` by name: an array written as .npy (a pair
    ``(array, version)`` in that .npy format version), raw bytes as they are."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            array, version = content if isinstance(content, tuple) else (content, None)
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, array, version=version, allow_pickle=False)


def _zip_with_member(path, name, header_shape, data):
    """An .npz holding one good array 'a' and member ``name`` whose .npy header claims ``header_shape``
    of float32 but is followed by ``data``."""
    header = {"descr": "<f4", "fortran_order": False, "shape": header_shape}
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("a.npy", "w") as member:
            np.lib.format.write_array(member, np.ones(3), allow_pickle=False)
        with archive.open(name, "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(data)


@pytest.mark.parametrize("shape, data", [((100000, 100000, 100), b"\0" * 16),   # terabytes claimed
                                         ((5,), b"\0" * 16),                      # 20 bytes claimed, 16 held
                                         ((2,), b"\0" * 16)],                     # 8 bytes claimed, 16 held
                         ids=["terabytes", "short", "long"])
def test_npy_header_that_does_not_fit_the_member_is_refused_before_allocating(tmp_path, shape, data):
    path = tmp_path / "claims.npz"
    _zip_with_member(path, "model.w.npy", shape, data)
    with pytest.raises(ValueError, match=r"claims\.npz.*'model\.w\.npy'.*claims shape .*holds 16 bytes"):
        msn.load(path)


def test_read_meta_checks_the_meta_header_too(tmp_path):
    from minisegnet.runfolder import CheckpointError, read_meta
    path = tmp_path / "claims.npz"
    _zip_with_member(path, "meta.npy", (100000, 100000, 100), b"\0" * 16)
    with pytest.raises(CheckpointError, match=r"claims\.npz.*'meta\.npy'.*claims shape") as caught:
        read_meta(str(path))
    assert str(caught.value).count("claims.npz") == 1                 # the file named once


@pytest.mark.parametrize("value", [[1, "a"], [["x", 2.5]], ("b", True)])
def test_a_list_mixing_strings_and_numbers_is_refused(tmp_path, value):
    """NumPy makes ``[1, "a"]`` an array of strings ('1', 'a'): the number would come back a string."""
    with pytest.raises(TypeError, match=r"^save: entry 'a' mixes strings with (int|float|bool) values"):
        msn.save({"a": value}, str(tmp_path / "m.npz"))
    assert not (tmp_path / "m.npz").exists()
    path = str(tmp_path / "ok.npz")                       # strings alone, as a list or an array, still save
    msn.save({"a": ["x", "yz"], "b": np.array(["u"]), "c": "word"}, path)
    assert msn.load(path)["a"].tolist() == ["x", "yz"] and msn.load(path)["c"].item() == "word"


def test_a_ragged_list_is_named_by_its_entry(tmp_path):
    """NumPy's 'setting an array element with a sequence ... inhomogeneous shape' named nothing."""
    with pytest.raises(ValueError, match=r"^save: entry 'a' is a ragged nested list"):
        msn.save({"a": [[1, 2], [3]]}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_save_names_a_nested_dict_and_a_bfloat16_tensor_with_the_fix(tmp_path, torch):
    """torch's {"model": state_dict, "epoch": 3} said 'dtype object (dict)'; a bfloat16 torch tensor
    raised torch's own 'Got unsupported ScalarType BFloat16', naming neither save nor the entry."""
    with pytest.raises(TypeError, match=r"save: entry 'model' is a dict; .* prefixed keys"):
        msn.save({"model": {"w": np.ones(2)}, "epoch": 3}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match=r"save: entry 'x' cannot become a NumPy array .*tensor.float\(\)"):
        msn.save({"x": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "b.npz")
    assert not list(tmp_path.iterdir())                         # nothing written


def test_save_names_any_mapping_entry(tmp_path):
    import types
    with pytest.raises(TypeError, match=r"save: entry 'model' is a dict"):
        msn.save({"model": types.MappingProxyType({"w": np.ones(2)})}, tmp_path / "a.npz")


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_save_flushes_the_temporary_to_disk_before_the_rename(tmp_path, monkeypatch):
    # guards atomic_file's os.fsync: the bytes must be on disk before os.replace commits the name
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(io.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(io.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    msn.save({"a": np.ones(3)}, tmp_path / "ck.npz")
    assert events == ["fsync", "replace"]


def test_an_interrupt_inside_a_save_leaves_no_temporary(tmp_path):
    # guards atomic_file's `except BaseException`: Ctrl-C (KeyboardInterrupt) must remove the temporary too
    path = tmp_path / "ck.npz"
    msn.save({"a": np.ones(2)}, path)
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_file(path) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]
    np.testing.assert_array_equal(msn.load(path)["a"], np.ones(2))


def test_a_temporary_name_already_taken_is_never_overwritten(tmp_path, monkeypatch):
    # guards _new_temporary's O_EXCL and its retry: an existing file of the drawn name is left alone
    names = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(io.secrets, "token_hex", lambda n: next(names))
    taken = tmp_path / ".ck.npz.aaaaaaaa.tmp"
    taken.write_bytes(b"someone else's")
    msn.save({"a": np.ones(2)}, tmp_path / "ck.npz")
    assert taken.read_bytes() == b"someone else's"
    np.testing.assert_array_equal(msn.load(tmp_path / "ck.npz")["a"], np.ones(2))


def test_an_empty_key_is_refused(tmp_path):
    # guards save's `not key`: an empty name would become the member ".npy"
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        msn.save({"": np.ones(2)}, tmp_path / "ck.npz")
    assert not os.path.exists(tmp_path / "ck.npz")


def test_a_member_not_named_npy_is_refused_even_if_it_holds_an_array(tmp_path):
    # guards load's `foreign` check: a valid .npy payload under another name is still not ours
    path = tmp_path / "ck.npz"
    _archive(path, {"a.npy": np.arange(3.0), "weights.bin": np.arange(3.0)})
    with pytest.raises(ValueError, match=r"holds member 'weights.bin', which is not an .npy array"):
        msn.load(path)


def test_a_member_in_npy_format_2_0_loads(tmp_path):
    # guards read_member's version (2, 0) branch (msn.save's docstring: "writes 1.0 or 2.0")
    path = tmp_path / "ck.npz"
    _archive(path, {"w.npy": (np.arange(6.0).reshape(2, 3), (2, 0))})
    np.testing.assert_array_equal(msn.load(path)["w"], np.arange(6.0).reshape(2, 3))


def test_a_compressed_npz_loads(tmp_path):
    # guards the size check against the member's uncompressed size (file_size, not compress_size)
    path = tmp_path / "ck.npz"
    np.savez_compressed(path, w=np.zeros((64, 64)), b=np.arange(5))
    back = msn.load(path)
    np.testing.assert_array_equal(back["w"], np.zeros((64, 64)))
    np.testing.assert_array_equal(back["b"], np.arange(5))


def test_a_file_that_is_not_a_zip_is_named_as_not_an_npz(tmp_path):
    # guards load's is_zipfile check: its message says what the file is, not a generic read failure
    path = tmp_path / "notes.npz"
    path.write_text("hello, not a checkpoint")
    with pytest.raises(ValueError, match=r"^checkpoint '.*notes\.npz' is not an \.npz file"):
        msn.load(path)


def test_a_bad_member_error_is_not_wrapped_a_second_time(tmp_path):
    # guards load's `except BadMember: raise`: read_member's own message reaches the user unwrapped
    path = tmp_path / "objects.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(io.BadMember) as info:
        msn.load(path)
    assert str(info.value).startswith(f"checkpoint {str(path)!r}: member 'a.npy' holds pickled")
    assert "cannot be read" not in str(info.value)


def test_save_into_a_missing_folder_names_the_folder(tmp_path):
    # guards save's directory check: the error names the missing folder, before any temporary is tried
    path = tmp_path / "no" / "such" / "ck.npz"
    with pytest.raises(FileNotFoundError, match=r"^save: directory '.*such' \(for '.*ck\.npz'\) does not exist"):
        msn.save({"a": np.ones(2)}, path)


def test_save_refuses_a_key_with_a_nul_character(tmp_path):
    """A zip member's name ends at a NUL: 'a\\x00b' was written as 'a' and load then refused the
    file; now save refuses the key before writing anything."""
    with pytest.raises(ValueError, match="save: a key must not hold a NUL character"):
        io.save({"ok": np.ones(1), "a\x00b": np.ones(1)}, tmp_path / "k.npz")
    assert not (tmp_path / "k.npz").exists()


def test_load_of_a_file_it_may_not_read_says_so(tmp_path, monkeypatch):
    # zipfile.is_zipfile swallows the OSError of open() and answers False, so a checkpoint this
    # process may not read (permissions) was reported as "not an .npz file (truncated, corrupt, or a
    # different format)": the wrong problem. (Simulated: the tests may run as root, which reads any file.)
    path = tmp_path / "model.npz"
    io.save({"w": np.zeros(3, np.float32)}, path)
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)          # what zipfile.is_zipfile opens with
    monkeypatch.setattr(stdlib_io, "open", denied)         # what zipfile.ZipFile opens with
    with pytest.raises(PermissionError, match="Permission denied"):
        io.load(path)
