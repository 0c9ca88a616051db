"""model_geometry.py on its own: the valid U-Net input for an image, and the memory probe of a model (cases from a mutation review, stop 38: each fails on a mutant that every test before let through)."""
import pytest

from minisegnet import checks, nn, shapes
from minisegnet.model_geometry import check_model_fits, geometry_for, valid_unet_input
from minisegnet.run_config import UserError
from minisegnet.models import UNet


def test_an_exact_fit_is_the_smallest_valid_unet_input():
    # guards "the smallest valid input whose output is at least size": an output of exactly size counts
    model = UNet(1, 2, base_channels=1, depth=4)
    assert valid_unet_input(model, 388) == (572, 388)           # the paper's tile: no padding beyond the context
    geometry = geometry_for(model, 388)
    assert geometry.pad == (92, 92, 92, 92) and geometry.crop == (0, 0)
    for size in (4, 20, 21, 100):
        i, out = valid_unet_input(model, size)
        assert out >= size
        assert all(shapes.unet_output_size(j, depth=4) < size
                   for j in shapes.unet_valid_input_sizes(1, i - 1, depth=4)), size


def test_check_model_fits_leaves_the_models_mode_as_it_was():
    # guards the finally clause: the probe forward runs in eval mode and restores train/eval afterwards
    model = UNet(1, 2, base_channels=1, depth=2, padding="same")
    model.eval()
    check_model_fits(model, 16, 1)
    assert not model.training
    model.train()
    check_model_fits(model, 16, 1)
    assert model.training


def test_a_model_out_of_memory_on_the_probe_is_a_user_error():
    # guards the MemoryError branch: a plain MemoryError from the probe forward is reported, not a traceback

    class Hungry(nn.Module):
        def forward(self, x):
            raise MemoryError("Unable to allocate 9 TiB")

    with pytest.raises(UserError, match="--size 16 does not fit this model: Unable to allocate 9 TiB"):
        check_model_fits(Hungry(), 16, 1)


def test_a_deep_valid_unet_finds_its_input_for_a_small_image():
    # guards valid_unet_input's search range, which must grow with the depth (2**depth between valid inputs)
    for depth in (6, 7, 8):
        model = UNet(1, 2, base_channels=1, depth=depth)
        i, out = valid_unet_input(model, 16)
        assert out >= 16 and shapes.unet_output_size(i, depth=depth) == out


def test_the_probe_input_is_sized_as_float32_before_it_is_made(monkeypatch):
    # guards check_model_fits' byte count: a 1 x 1 x 16 x 16 float32 probe is 1 KiB, refused by a 1000-byte memory
    model = UNet(1, 2, base_channels=1, depth=2, padding="same")
    monkeypatch.setattr(checks, "memory_bytes", lambda: 1000)
    with pytest.raises(UserError, match=r"--size 16 makes an array of shape \(1, 1, 16, 16\) \(1"):
        check_model_fits(model, 16, 1)
