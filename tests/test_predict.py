"""predict.py on its own: the padding of a whole-image pass and its refusals (cases from a mutation review, stop 38: each fails on a mutant that every test before let through; the overlap tiles and the CLI's predict runs are in test_train_cli.py)."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import minisegnet as msn
from minisegnet import predict
from minisegnet.cli import main


def test_same_padding_pads_by_reflection_without_repeating_the_edge():
    # guards _outputs' np.pad(mode="reflect") for same-padding models ("symmetric" would repeat the edge row)
    msn.manual_seed(0)
    model = msn.nn.Conv2d(3, 2, 3, padding=1)                  # sees the padding at the image's border
    image = np.random.default_rng(0).random((3, 30, 29)).astype(np.float32)     # padded by (1, 1) and (1, 2)
    padded = np.pad(image, ((0, 0), (1, 1), (1, 2)), mode="reflect")
    with msn.no_grad():
        want = model(msn.tensor(padded[None])).numpy()[:, :, 1:31, 1:30]
    np.testing.assert_allclose(predict.image_outputs(model, image).numpy(), want, atol=1e-6)


def test_predict_into_a_file_says_predict_writes_a_folder(tmp_path):
    # guards predict_images' own --out check (its message; checked before the checkpoint is read)
    from minisegnet.train import UserError

    out = tmp_path / "taken.png"
    out.write_bytes(b"")
    with pytest.raises(UserError, match=r"is a file; predict writes its PNGs into a folder"):
        predict.predict_images(str(tmp_path / "no.npz"), [], str(out))


def test_a_two_frame_image_is_noted_as_animated(tmp_path):
    # guards _read_image's `frames > 1` (the CLI test uses 3 frames)
    from PIL import Image

    frames = [Image.fromarray(np.full((6, 7, 3), v, np.uint8), "RGB") for v in (30, 200)]
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    _, notes = predict._read_image(str(tmp_path / "two.gif"), 3)
    assert "is animated (2 frames): predicted its first frame" in notes


def test_an_image_too_big_for_memory_is_a_user_error(tmp_path, monkeypatch):
    # guards predict_images' `except MemoryError`: a clear UserError naming the image, not a traceback
    from PIL import Image

    from minisegnet.train import UserError

    Image.fromarray(np.zeros((5, 6, 3), np.uint8), "RGB").save(tmp_path / "big.png")
    monkeypatch.setattr(predict, "_checkpoint_path", lambda path: path)
    monkeypatch.setattr(predict, "_read", lambda path: ({}, {"info": {"in_channels": 3}}))
    monkeypatch.setattr(predict, "_model_from_state", lambda state, meta, path: (object(), object()))

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(predict, "predict_image", out_of_memory)
    with pytest.raises(UserError, match=r"image '.*big\.png' \(5x6 pixels\) needs more memory than this machine has"):
        predict.predict_images("ck.npz", [str(tmp_path / "big.png")], str(tmp_path / "out"), log=lambda *a: None)


@pytest.mark.parametrize("size", [(10, 10), (10, 200), (70, 9)])
def test_a_deeplab_predicts_an_image_smaller_than_its_atrous_rates_need(size):
    """'Images of any size': a DeepLab whose rate 4 at output stride 16 needs 65 pixels takes a
    10x10 image mirror-padded until its rule passes (and no branch degenerates on either axis).
    The old code padded to 32 only, and the model's ValueError ended predict mid-run."""
    import warnings

    from minisegnet.models import DeepLabV3Plus
    msn.manual_seed(0)
    model = DeepLabV3Plus(3, 2, atrous_rates=(4,), width_mult=0.25, aspp_channels=8, low_level_channels=4,
                          decoder_channels=8)
    image = np.random.default_rng(0).random((3,) + size).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # no degenerate branch either
        out = predict.image_outputs(model, image)
        classes = predict.predict_image(model, image)
    assert out.shape == (1, 2) + size and np.isfinite(out.numpy()).all()
    assert classes.shape == size


# ---- mutation review of stop 40's changes
class _NeedsSide:
    """A model whose size rule refuses (or, warn=True, warns about) a side under ``least``."""

    def __init__(self, least, warn=False):
        self.least, self.warn = least, warn

    def check_input_size(self, size):
        if min(size) < self.least:
            if self.warn:
                warnings.warn("a branch degenerates", UserWarning)
            else:
                raise ValueError("too small")


@pytest.mark.parametrize("warn", [False, True])
def test_a_small_image_grows_only_its_shorter_side_until_the_model_takes_it(warn):
    assert predict._fitting_size(_NeedsSide(64, warn), 10, 100, 16) == (64, 112)
    assert predict._fitting_size(_NeedsSide(64, warn), 100, 100, 16) == (112, 112)
    assert predict._fitting_size(_NeedsSide(64, warn), 40, 40, 16) == (64, 64)


def test_a_side_already_a_multiple_is_not_padded():
    assert predict._fitting_size(object(), 32, 48, 16) == (32, 48)
    assert predict._fitting_size(object(), 33, 47, 16) == (48, 48)
    assert predict._fitting_size(_NeedsSide(1), 32, 48, 16) == (32, 48)


def test_a_truncated_image_is_refused_before_any_prediction_is_written(tmp_path, capsys):
    """predict._check_images promises every image opens 'before any prediction is written', but it
    only opens the header (Image.open is lazy): a PNG cut short passes, the images before it are
    predicted and written (and --out is created), and the error comes only when the cut one is
    decoded, without saying that files were written."""
    run = str(tmp_path / "run")
    tiny = ["--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "8", "--epochs", "1",
            "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--processes", "1", "--quiet"]
    assert main(["train", *tiny, "--out", run]) == 0
    good, cut = tmp_path / "a_good.png", tmp_path / "b_cut.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(good)
    cut.write_bytes(good.read_bytes()[:1500])            # the header intact, the pixel data cut short
    out = tmp_path / "preds"
    capsys.readouterr()
    assert main(["predict", run, str(good), str(cut), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "b_cut.png" in err and "Traceback" not in err
    assert not out.exists() or os.listdir(out) == [], sorted(os.listdir(out))


def test_a_photo_is_predicted_as_its_exif_orientation_shows_it_and_noted(tmp_path):
    # predict reads an image through data.image_array: turned as a viewer shows it, and says so
    exif = Image.Exif()
    exif[0x0112] = 8                                                 # "rotate 270": 90 degrees the other way
    stored = (np.arange(5 * 7 * 3) % 251).astype(np.uint8).reshape(5, 7, 3)
    Image.fromarray(stored).save(tmp_path / "photo.png", exif=exif)
    image, notes = predict._read_image(str(tmp_path / "photo.png"), 3)
    np.testing.assert_allclose(image, np.rot90(stored, 1).transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert notes == ["has 3 channels (PIL mode RGB), the model takes 3: turned as its EXIF orientation (8) says"]
