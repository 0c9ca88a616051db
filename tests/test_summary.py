"""summary(): shapes, parameters, multiply-adds and receptive fields from the
formulas, checked against real forward passes, hand counts and shapes.*."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import nn, shapes
from minisegnet import functional as F
from minisegnet.nn import module as module_mod
from minisegnet.summary import summary

models = pytest.importorskip("minisegnet.models", reason="minisegnet.models not available")


def _real_shapes(model, x):
    """Every module call's real output shape, by dotted name: the forward really runs."""
    names = {id(m): name for name, m in model.named_modules()}
    seen = {}

    def record(module, args, kwargs):
        out = module.forward(*args, **kwargs)
        first = out[0] if isinstance(out, tuple) else out
        seen.setdefault(names[id(module)], first.shape)
        return out

    module_mod._call_recorder = record
    try:
        with msn.no_grad():
            model(x)
    finally:
        module_mod._call_recorder = None
    return seen


def _rows_by_name(result):
    return {r.name: r for r in result.rows}


def test_full_572_unet_table(capsys):
    model = models.UNet(in_channels=3, num_classes=2, base_channels=64, depth=4, padding="valid")
    result = summary(model, (1, 3, 572, 572))
    printed = capsys.readouterr().out
    assert printed.strip() == str(result).strip() and "Total params: 31,031,810" in printed
    assert result.total_params == sum(int(p.size) for p in model.parameters()) == result.model_params
    rows = _rows_by_name(result)
    assert rows[""].output_shape == (1, 2, 388, 388)
    # the conv outputs walk the paper's numbers (shapes.unet_trace), level by level
    trace = [r.size for r in shapes.unet_trace(572) if r.operation == "conv 3x3"]
    convs = [r.output_shape[-1] for r in result.rows if r.layer == "Conv2d" and r.name != "head"]
    assert convs == trace
    # one level numbering: the trace's stages are the modules that run the steps, in the same order
    stages = [(r.stage, r.size) for r in shapes.unet_trace(572) if r.operation == "conv 3x3"]
    modules = [(r.name.split(".")[0] if r.name.startswith("bottleneck") else ".".join(r.name.split(".")[:2]),
                r.output_shape[-1]) for r in result.rows
               if r.layer == "Conv2d" and r.name != "head"]
    assert modules == stages
    ups = [(r.stage, r.size) for r in shapes.unet_trace(572) if r.operation == "up-conv 2x2"]
    assert ups == [(r.name[:-len(".up")], r.output_shape[-1]) for r in result.rows if r.layer == "ConvTranspose2d"]
    assert [rows[f"decoder.{i}.up"].output_shape[-2:] for i in (3, 2, 1, 0)] == [(56, 56), (104, 104),
                                                                                (200, 200), (392, 392)]
    # multiply-adds by hand: C_out * H_out * W_out * C_in * kh * kw
    assert rows["encoder.0.conv1"].macs == 64 * 570 * 570 * 3 * 9
    assert rows["decoder.3.up"].macs == 1024 * 28 * 28 * 512 * 2 * 2   # C_in*H_in*W_in*C_out*kh*kw
    assert result.total_macs == sum(r.macs for r in result.rows)
    # receptive fields: the encoder is a conv/pool chain, so shapes.receptive_field gives it exactly
    chain = []
    for level in range(4):
        chain += [(f"encoder.{level}.conv1", 3), (f"encoder.{level}.conv2", 3), (f"pool{level}", 2, 2)]
    expected = {r.name: (r.size, r.jump) for r in shapes.receptive_field(chain)}
    for level in range(4):
        for conv in ("conv1", "conv2"):
            name = f"encoder.{level}.{conv}"
            assert (rows[name].rf, rows[name].jump) == expected[name]
    assert (rows["bottleneck.conv2"].rf, rows["bottleneck.conv2"].jump) == (140, 16)
    assert (rows[""].rf, rows[""].jump) == (200, 1)   # the documented convention through the up-convs


@pytest.mark.parametrize("kwargs,size", [
    (dict(base_channels=4, depth=2, padding="valid"), (2, 3, 60, 76)),
    (dict(base_channels=4, depth=3, padding="same", batch_norm=True, up_mode="bilinear"), (1, 3, 32, 48)),
])
def test_unet_rows_match_a_real_forward(kwargs, size):
    model = models.UNet(in_channels=3, num_classes=2, **kwargs)
    result = summary(model, size, print_table=False)
    real = _real_shapes(model, msn.tensor(np.zeros(size, np.float32)))
    assert {r.name: r.output_shape for r in result.rows} == real
    assert result.total_params == sum(int(p.size) for p in model.parameters())


def test_invalid_unet_size_is_the_shapes_error():
    model = models.UNet(in_channels=1, num_classes=2, base_channels=2, depth=4)
    with pytest.raises(ValueError, match=r"U-Net input 570x572 \(height 570\) is invalid.*556 and 572"):
        summary(model, (1, 1, 570, 572), print_table=False)
    assert module_mod._call_recorder is None   # the hook is cleared after an error


def test_conv_chain_receptive_field_equals_shapes_receptive_field():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, stride=2), nn.ReLU(),
                        nn.Conv2d(2, 2, 5, dilation=2, padding=4), nn.Conv2d(2, 3, (3, 1), stride=(1, 2)))
    result = summary(net, (1, 1, 64, 64), print_table=False)
    layers = [("0", 3, 1, 1), ("1", 3, 2), ("3", 5, 1, 4, 2), ("4", (3, 1), (1, 2))]
    # (shapes gives every row in pairs once a layer has a pair: the first three rows from their own chain)
    expected = {r.name: r for r in shapes.receptive_field(layers[:3]) + shapes.receptive_field(layers)[3:]}
    rows = _rows_by_name(result)
    for name in ("0", "1", "3"):
        assert (rows[name].rf, rows[name].jump) == (expected[name].size, expected[name].jump)
    assert (rows["4"].rf, rows["4"].jump) == (expected["4"].size, expected["4"].jump) == ((25, 21), (2, 4))
    assert rows["2"].rf == rows["1"].rf   # ReLU keeps the field
    # a (3, 1) kernel at stride (1, 2) on 31x31: 29x16, so the multiply-adds tell height from width
    assert rows["4"].output_shape == (1, 3, 29, 16)
    assert rows["4"].macs == 3 * 29 * 16 * 2 * 3 * 1          # C_out H_out W_out C_in kh kw


def test_shared_layer_counted_once_and_unused_parameters_reported():
    class Net(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.unused = nn.Conv2d(2, 5, 1)
            self.scale = nn.Parameter(np.ones(1, np.float32))

        def forward(self, x):
            return self.conv(self.conv(x)) * self.scale

    net = Net()
    result = summary(net, (2, 8, 8), print_table=False)
    assert [r.name for r in result.rows] == ["", "conv", "conv"]
    assert [r.params for r in result.rows] == [1, 2 * 2 * 9 + 2, 0]
    assert result.total_params == 1 + 38 and result.model_params == 1 + 38 + 15
    assert "Parameters never used by forward: 15" in str(result)
    assert result.rows[0].output_shape == (1, 2, 8, 8)
    assert result.rows[2].rf == 5 and result.rows[1].macs == 2 * 8 * 8 * 2 * 9


def test_empty_batch_fallback_and_modes_restored():
    class NeedsBatch(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            if x.shape[0] == 0:
                raise RuntimeError("this glue cannot take an empty batch")
            return F.relu(self.conv(x))

    net = NeedsBatch()
    net.train()
    result = summary(net, (3, 1, 10, 10), print_table=False)
    assert result.rows[0].output_shape == (3, 4, 8, 8)
    assert result.rows[1].macs == 3 * 4 * 8 * 8 * 9
    assert net.training and net.conv.training


def test_argument_errors():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        summary(lambda x: x, (1, 3, 8, 8))
    net = nn.Conv2d(1, 1, 3)
    with pytest.raises(TypeError, match="input_size must be"):
        summary(net, (8, 8))
    with pytest.raises(ValueError, match="input_size must be positive"):
        summary(net, (1, 1, 0, 8))


def test_pooling_and_resampling_layers_match_a_real_forward():
    for name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "MaxUnpool2d", "Upsample"):
        if not hasattr(nn, name):
            pytest.skip(f"nn.{name} has not landed yet (nn/pooling.py)")

    class Net(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
            self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True, return_indices=True)
            self.unpool = nn.MaxUnpool2d(3, 2, 1)
            self.avg = nn.AvgPool2d(2, ceil_mode=True)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.down = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)
            self.gap = nn.AdaptiveAvgPool2d((3, None))

        def forward(self, x):
            x = self.conv(x)
            y, indices = self.pool(x)
            x = self.unpool(y, indices, output_size=x.shape)
            x = self.up(self.avg(x))
            x = self.down(x, output_size=(2 * x.shape[2], 2 * x.shape[3]))
            return self.gap(x)

    net = Net()
    size = (2, 2, 21, 30)
    result = summary(net, size, print_table=False)
    real = _real_shapes(net, msn.tensor(np.random.default_rng(0).standard_normal(size).astype(np.float32)))
    assert {r.name: r.output_shape[0] if r.name == "pool" else r.output_shape for r in result.rows} == real
    rows = _rows_by_name(result)
    assert rows["down"].macs == 2 * 4 * rows["up"].output_shape[2] * rows["up"].output_shape[3] * 3 * 9
    assert (rows["pool"].rf, rows["pool"].jump) == (7, 4)    # conv 3/2 then pool 3/2: 3 + 2*2, 2*2


@pytest.mark.parametrize("layers, size, message", [
    # an input whose channels the first conv does not take: the table was printed all the same
    (lambda: [nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)], (1, 5, 32, 32),
     r"conv2d: weight of shape \(8, 3, 3, 3\) must have shape \(C_out, C_in/groups = 5"),
    (lambda: [nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(6, 4, 3)], (1, 3, 32, 32),     # inside the model
     r"conv2d: weight of shape \(4, 6, 3, 3\) must have shape \(C_out, C_in/groups = 8"),
    (lambda: [nn.Conv2d(4, 8, 3, groups=2)], (1, 5, 32, 32), r"conv2d: input channels \(5\) must be divisible by groups=2"),
    (lambda: [nn.ConvTranspose2d(3, 8, 2, 2)], (2, 5, 16, 16),
     r"conv_transpose2d: weight of shape \(3, 8, 2, 2\) must have shape \(C_in=5"),
    (lambda: [nn.Conv2d(3, 8, 3), nn.BatchNorm2d(6)], (1, 3, 32, 32), r"BatchNorm2d\(6\) got input with 8 channels"),
], ids=["first-conv", "inner-conv", "groups", "conv-transpose", "batch-norm"])
def test_channels_the_layers_do_not_take_are_their_forward_errors(layers, size, message):
    model = nn.Sequential(*layers())
    with pytest.raises(ValueError, match=message) as summarised:
        summary(model, size, print_table=False)
    with pytest.raises(ValueError) as forward:
        model(msn.tensor(np.zeros(size, np.float32)))
    assert str(summarised.value) == str(forward.value)


def test_a_model_returning_a_dict_shows_each_output_and_their_widest_field():
    # the top row showed [] and a receptive field of 1 (the input's) for PanopticDeepLab
    from minisegnet.models import PanopticDeepLab
    msn.manual_seed(0)
    model = PanopticDeepLab(3, 4, output_stride=8, atrous_rates=(1, 2), width_mult=0.25, aspp_channels=8,
                            low_level_channels=8, decoder_channels=8, head_channels=8)
    result = summary(model, (2, 3, 32, 32), print_table=False)
    top = result.rows[0]
    model.eval()
    with msn.no_grad():
        real = model(msn.tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert top.output_shape == {key: tuple(value.shape) for key, value in real.items()}
    assert list(top.output_shape) == ["semantic", "center", "offset"]
    assert "semantic [2, 4, 32, 32] center [2, 1, 32, 32] offset [2, 2, 32, 32]" in str(result)
    fields = [row.rf for row in result.rows[1:] if row.rf is not None]
    # the heads end at 1/4 of the input; the bilinear resize to full size reads one more of their pixels
    assert top.rf == max(fields) + 4 and top.jump == 1


def test_a_module_returning_a_tuple_shows_its_widest_field():
    """DeepLabV3+'s backbone returns (low_level, features): its row shows the features' field and jump
    (the widest, as a dict-returning model's row does), one number each. It showed the low-level map's
    (19 and 4 at any output stride), a fraction of what the features it hands to the ASPP read."""
    from minisegnet.models import DeepLabV3Plus
    for output_stride in (8, 16):
        model = DeepLabV3Plus(3, 2, output_stride=output_stride, atrous_rates=(1, 2), width_mult=0.25,
                              aspp_channels=8, low_level_channels=8, decoder_channels=8)
        rows = _rows_by_name(summary(model, (1, 3, 64, 64), print_table=False))
        blocks = [row for name, row in rows.items() if name.startswith("backbone.blocks.") and name.count(".") == 2]
        low = rows[f"backbone.blocks.{model.backbone.low_level_index}"]
        backbone = rows["backbone"]
        assert (backbone.rf, backbone.jump) == (blocks[-1].rf, blocks[-1].jump)
        assert (backbone.rf, backbone.jump) == (max(r.rf for r in blocks), output_stride)
        assert isinstance(backbone.rf, int) and backbone.rf > low.rf and low.jump == 4
        assert rows["aspp"].rf > backbone.rf            # the ASPP reads the features, not the low-level map


def test_segnet_and_fcn_fields_are_sized_not_unknown():
    """SegNet's functional unpooling ran on the zero-size batch as an EmptyBatch op, and FCN's input
    pad counted as a size-changing op: their fields showed '?'. Now the zero-batch walk gives the
    real batch's fields, and FCN at 60x60 (padded to a multiple of 32 inside) the field it has at 64."""
    import numpy as np

    from minisegnet import summary as S
    from minisegnet.models import FCN, SegNet

    model = SegNet(3, 2, 4, depth=1)
    fields = [[row["rf"] for row in S._run(model, (1, 3, 8, 8), np.float32, zero_batch=zb).rows]
              for zb in (True, False)]
    assert fields[0] == fields[1] and S._UNKNOWN not in fields[0]
    fcn = FCN(2, "8s", width=4)
    at_60 = [row.rf for row in S.summary(fcn, (1, 3, 60, 60)).rows]
    at_64 = [row.rf for row in S.summary(fcn, (1, 3, 64, 64)).rows]
    assert S._UNKNOWN not in at_60 and at_60[-1] == at_64[-1]


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def _fields(model, size):
    return {row.name: (row.rf, row.jump) for row in summary(model, size, print_table=False).rows}


def test_adaptive_pooling_grows_the_field_by_its_widest_window():
    # guards _adaptive_step: 8 -> 2 averages windows of 4, so r = 3 + (4 - 1) * 1 and j = 4
    fields = _fields(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(2)), (1, 1, 10, 10))
    assert fields["0"] == (3, 1)
    assert fields["1"] == (6, 4)


def test_bilinear_upsampling_reads_one_more_input_pixel_nearest_none():
    # guards Upsample's taps: bilinear adds (2 - 1) input jumps to the field, nearest adds none
    bilinear = _fields(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Upsample(scale_factor=2, mode="bilinear")),
                       (1, 1, 11, 11))
    nearest = _fields(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Upsample(scale_factor=2, mode="nearest")),
                      (1, 1, 11, 11))
    assert bilinear["0"] == nearest["0"] == (3, 2)
    assert bilinear["1"] == (5, 1)
    assert nearest["1"] == (3, 1)


class _PoolUnpool(nn.Module):
    def __init__(self):
        self.conv = nn.Conv2d(1, 1, 3)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)

    def forward(self, x):
        y, indices = self.pool(self.conv(x))
        return self.unpool(y, indices)


def test_max_unpooling_divides_the_jump_and_adds_no_field_when_windows_do_not_overlap():
    # guards MaxUnpool2d's step: ceil(k / s) - 1 extra inputs (none for k = s = 2)
    fields = _fields(_PoolUnpool(), (1, 1, 10, 10))
    assert fields["pool"] == (4, 2)
    assert fields["unpool"] == (4, 1)


def test_a_dilated_max_pool_widens_the_field_by_its_dilation():
    # guards the MaxPool2d dilation in shape_only: r = 3 + (3 - 1) * 2 * 1
    fields = _fields(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(3, stride=1, dilation=2)), (1, 1, 16, 16))
    assert fields["1"] == (7, 1)


def test_a_grouped_conv_counts_its_multiply_adds_per_group():
    # guards the conv's macs: C_out * H_out * W_out * (C_in / groups) * kh * kw per image
    result = summary(nn.Sequential(nn.Conv2d(4, 8, 3, groups=2)), (2, 4, 10, 10), print_table=False)
    assert result.rows[1].macs == 2 * 8 * 8 * 8 * (4 // 2) * 9
    assert result.total_macs == 2 * 8 * 8 * 8 * 2 * 9


def test_only_containers_show_dashes_a_leaf_without_parameters_shows_zero():
    # guards format_table's container test: a ReLU (no parameters, no children) is a leaf row of 0s
    table = str(summary(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), (1, 1, 8, 8), print_table=False))
    relu = next(line for line in table.splitlines() if "(ReLU)" in line)
    top = next(line for line in table.splitlines() if line.startswith("Sequential"))
    assert relu.split()[-4:-2] == ["0", "0"]          # Param #, Mult-adds
    assert top.split()[-4:-2] == ["--", "--"]


class _Unpool(nn.Module):
    """Pool 2x2 with indices, then unpool to a fixed ``output_size``."""

    def __init__(self, output_size):
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.output_size = output_size

    def forward(self, x):
        y, indices = self.pool(x)
        return self.unpool(y, indices, output_size=self.output_size)


class _UpTo(nn.Module):
    """A stride-2 transposed conv asked for a fixed ``output_size``."""

    def __init__(self, output_size):
        self.up = nn.ConvTranspose2d(1, 1, 2, 2)
        self.output_size = output_size

    def forward(self, x):
        return self.up(x, output_size=self.output_size)


@pytest.mark.parametrize("make, size", [
    # reflect padding of 2 on a 2x2 map: the forward's pad refuses it (PyTorch too); summary said (1, 1, 4, 4)
    (lambda: nn.Sequential(nn.Conv2d(1, 1, 3, padding=2, padding_mode="reflect")), (1, 1, 2, 2)),
    # 'same' with an even kernel pads 1 and 2: 2 is not smaller than the 2x2 map
    (lambda: nn.Sequential(nn.Conv2d(1, 1, 4, padding="same", padding_mode="reflect")), (1, 1, 2, 2)),
    # 8x8 pooled to 4x4 unpools to 7..9 only (PyTorch: "dim 0 must be between 6 and 10"); summary said 20x20
    (lambda: _Unpool((20, 20)), (1, 1, 8, 8)),
    # 4x4 up by a 2x2/2 transposed conv reaches 8..9 only: the layer's message, not shapes' "target=..."
    (lambda: _UpTo((20, 20)), (1, 1, 4, 4)),
    # output_size of 3 elements: the layer wants 2 or 4
    (lambda: _UpTo((1, 8, 8)), (1, 1, 4, 4)),
    # a dilated window that reads only padding: max_pool2d refuses it (documented); summary said (1, 1, 1, 1)
    (lambda: nn.Sequential(nn.MaxPool2d(2, 1, 1, dilation=2)), (1, 1, 1, 1)),
    # dilated on the width only: summary runs the layer whenever either axis is dilated
    (lambda: nn.Sequential(nn.MaxPool2d(2, 1, 1, dilation=(1, 2))), (1, 1, 4, 1)),
], ids=["reflect-padding", "reflect-same-even", "unpool-output-size", "transpose-output-size",
        "transpose-output-size-3", "pool-window-in-padding", "pool-dilated-on-one-axis"])
def test_sizes_the_layers_refuse_are_their_forward_errors(make, size):
    model = make()
    with pytest.raises(ValueError) as forward:
        with msn.no_grad():
            model(msn.tensor(np.zeros(size, np.float32)))
    with pytest.raises(ValueError) as summarised:
        summary(model, size, print_table=False)
    assert str(summarised.value) == str(forward.value)
