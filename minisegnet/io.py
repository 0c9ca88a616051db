"""Saving and loading checkpoints: a dict of arrays in one ``.npz`` file.

``save(obj, f)`` writes NumPy's zip-of-``.npy`` format, with no
pickled Python objects inside, so loading a checkpoint can never run code
(``np.load(..., allow_pickle=False)``). The file is written under a temporary
name in the same directory, flushed to disk, and then renamed over ``f``
with ``os.replace``: a rename within one directory is atomic, so a crash,
a full disk or an error half-way leaves the previous checkpoint untouched.
``atomic_file(path)`` is that write for any file (the run folder's JSON and
PNGs use it too).

``load(f)`` reads every array eagerly and turns the many ways a file can be
wrong (truncated, corrupt, not an ``.npz`` at all, holding pickled objects or
members that are not ``.npy`` arrays) into one ``ValueError`` that names the path.
Each member's ``.npy`` header is read first and its shape and dtype must account
for exactly the bytes the member holds, so a small file claiming a huge array
is refused before anything is allocated.

The names and order of the arguments are ``torch.save(obj, f)`` and
``torch.load(f)``'s; what they take is narrower. ``obj`` is a dict of arrays
(a ``state_dict``), not any picklable object; ``f`` is a path (``str`` or
``os.PathLike``), not a file object, since the atomic write renames a file;
torch's other keywords (``pickle_module``, ``map_location``,
``weights_only``, ...) are not taken: nothing is pickled, and ``load``
always returns NumPy arrays on the host.

Strings (e.g. a JSON record of the run) can be stored as 0-d NumPy string
arrays: ``np.array(json.dumps(meta))``; they need no pickling.
"""
import contextlib
import math
import os
import secrets
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from . import backend

__all__ = ["save", "load", "atomic_file"]


@contextlib.contextmanager
def atomic_file(path):
    """``with atomic_file(path) as f: f.write(...)``: ``path`` gets all of it or none.

    ``f`` is a binary file on a temporary name ``.NAME.XXXXXXXX.tmp`` next to
    ``path``; when the block ends normally it is flushed to disk and renamed
    over ``path``. An exception removes it; a kill leaves it behind (a run
    folder's are cleared by ``runfolder.remove_stale_temporaries``). The file
    gets the permissions ``open(path, "wb")`` would give it (0666 less the
    umask), not the private 0600 of ``tempfile.mkstemp``.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = _new_temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _new_temporary(directory, name):
    """``(fd, path)`` of a new file ``.NAME.XXXXXXXX.tmp`` in ``directory``, open for writing.
    ``O_EXCL``: the name is ours alone; mode 0o666: the umask decides, as for any new file."""
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:                 # 1 in 4 billion: draw another name
            continue


def _to_array(key, value):
    if hasattr(value, "requires_grad") and hasattr(value, "data"):  # a Tensor
        value = value.data
    if isinstance(value, Mapping):             # torch's {"model": sd, "optimizer": osd, "epoch": 3}
        raise TypeError(f"save: entry {key!r} is a dict; the file holds one flat dict of arrays, so give "
                        f"its entries prefixed keys ({{f'{key}.' + k: v for k, v in ...items()}}, as "
                        f"minisegnet train's checkpoints do with 'model.' and 'optimizer.')")
    try:
        array = np.asarray(backend.to_numpy(value))
    except ValueError:                          # NumPy's "inhomogeneous shape": a ragged nested list
        raise ValueError(f"save: entry {key!r} is a ragged nested list (rows of different lengths), which is "
                         f"not an array") from None
    except TypeError as error:                  # torch.Tensor.numpy() of a dtype NumPy lacks (bfloat16)
        raise TypeError(f"save: entry {key!r} cannot become a NumPy array ({error}); convert it first, "
                        f"e.g. tensor.float()") from None
    if array.dtype.kind == "U" and not isinstance(value, (str, np.ndarray)):
        others = [v for v in np.asarray(value, dtype=object).ravel() if not isinstance(v, str)]
        if others:                              # NumPy would write them all as strings
            raise TypeError(f"save: entry {key!r} mixes strings with {type(others[0]).__name__} values (e.g. "
                            f"{others[0]!r}), which NumPy would turn into strings; save them as separate entries")
    if array.dtype.kind not in "biufcU":
        raise TypeError(f"save: entry {key!r} has dtype {array.dtype} ({type(value).__name__}); "
                        "only numeric, boolean and string arrays can be saved without pickling")
    return array


def _as_path(f, name):
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"{name}: f must be a path (str or os.PathLike), got {type(f).__name__}; "
                        "file objects are not supported (torch's are)")
    return os.fspath(f)


def save(obj, f):
    """Write ``obj`` (a state dict: name -> array, Tensor or number) to the path ``f`` as ``.npz``.

    Atomic: the data goes to a temporary file next to ``f`` which then
    replaces it, so ``f`` always holds either the old or the new checkpoint.
    The file is written exactly at ``f`` (no ``.npz`` is appended). Returns
    the path. ``torch.save(obj, f)``'s names; ``obj`` must be a dict and ``f``
    a path (see the module docstring).
    """
    if not isinstance(obj, dict):
        raise TypeError(f"save: obj must be a dict of name -> array (a state_dict), got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: keys must be non-empty strings, got {key!r}")
        if "\x00" in key:                           # a zip member's name ends at a NUL: 'a\x00b' would read as 'a'
            raise ValueError(f"save: a key must not hold a NUL character (a zip member's name ends there), "
                             f"got {key!r}")
        arrays[key] = _to_array(key, value)
    path = _as_path(f, "save")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} (for {path!r}) does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path!r} is a folder; give a file name (e.g. {os.path.join(path, 'model.npz')!r})")
    try:
        with atomic_file(path) as f:
            # what np.savez writes: one NAME.npy per entry in an uncompressed zip; written here
            # member by member, as np.savez(f, **arrays) would take keys named "file" or
            # "allow_pickle" for its own arguments
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
                for key, array in arrays.items():
                    with archive.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)
    except OSError as error:                        # named by the path asked for, not the temporary
        raise type(error)(f"save: cannot write {path!r} ({error.strerror or error})") from None
    return path


def load(f):
    """Read a checkpoint written by ``save`` from the path ``f``: a dict name -> NumPy array.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming
    the path for a truncated, corrupt or foreign file. ``torch.load(f)``'s
    name; ``f`` must be a path (see the module docstring).
    """
    path = _as_path(f, "load")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint {path!r} is a directory, not an .npz file")
    try:                        # opened first: is_zipfile answers False for a file it may not open
        with open(path, "rb") as handle:
            is_npz = zipfile.is_zipfile(handle)
    except OSError as error:
        raise type(error)(error.errno, f"checkpoint {path!r} cannot be opened: {error.strerror}") from None
    if not is_npz:
        raise ValueError(f"checkpoint {path!r} is not an .npz file (truncated, corrupt, or a "
                         "different format); minisegnet checkpoints are written by msn.save")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            foreign = [info.filename for info in infos if not info.filename.endswith(".npy")]
            if not foreign:
                return {info.filename[:-len(".npy")]: read_member(archive, info, path) for info in infos}
    except BadMember:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"checkpoint {path!r} cannot be read ({type(exc).__name__}: {exc}); "
                         "it is truncated, corrupt or not written by msn.save") from exc
    raise ValueError(f"checkpoint {path!r} holds member {foreign[0]!r}, which is not an .npy array; "
                     "minisegnet checkpoints (written by msn.save) hold only .npy arrays")


class BadMember(ValueError):
    """A member of a checkpoint that is not an array ``save`` could have written; the message says which and why."""


def read_member(archive, info, path):
    """The array in member ``info`` (a ``ZipInfo`` or name) of the open zip ``archive`` of checkpoint ``path``.

    The ``.npy`` header is read and checked first: a member without the ``.npy``
    magic (``np.load`` would hand back its raw bytes), one holding pickled
    objects, or one whose header claims a shape and dtype that do not fit the
    bytes the member holds (a few bytes claiming terabytes would otherwise be
    allocated before the read finds them missing) raises a ``ValueError``
    naming ``path`` and the member. Other read errors (CRC, truncation)
    propagate as ``zipfile``/``numpy`` raise them.
    """
    if not isinstance(info, zipfile.ZipInfo):
        info = archive.getinfo(info)
    name = info.filename
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
        except ValueError:
            raise BadMember(f"checkpoint {path!r} holds member {name!r}, which is not an .npy array "
                             "(no .npy header); minisegnet checkpoints (written by msn.save) hold only "
                             ".npy arrays") from None
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise BadMember(f"checkpoint {path!r}: member {name!r} has .npy format version "
                             f"{version[0]}.{version[1]}; msn.save writes 1.0 or 2.0")
        header_bytes = member.tell()
    if dtype.hasobject:
        raise BadMember(f"checkpoint {path!r}: member {name!r} holds pickled Python objects "
                         f"(dtype {dtype}), which are never loaded; minisegnet checkpoints hold only "
                         "numeric, boolean and string arrays")
    claimed = math.prod(shape) * dtype.itemsize
    held = info.file_size - header_bytes
    if claimed != held:
        raise BadMember(f"checkpoint {path!r}: member {name!r} claims shape {tuple(shape)} of {dtype} "
                         f"({claimed} bytes) but holds {held} bytes of data; it is corrupt or "
                         "not written by msn.save")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)
