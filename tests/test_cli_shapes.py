"""The `minisegnet shapes` and `minisegnet summary` commands: output and exit codes."""
import pytest

from minisegnet import shapes
from minisegnet.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shapes_unet_572_prints_every_level_with_crops(capsys):
    code, out, err = run(capsys, "shapes", "unet", "572")
    assert code == 0 and err == ""
    lines = out.splitlines()
    body = [line.split() for line in lines[3:-1]]
    # one line per trace step: stage, level, operation, "in -> out"
    steps = shapes.unet_trace(572)[1:]
    assert len(body) == len(steps)
    for words, step in zip(body, steps):
        assert words[:2] == [step.stage, str(step.level)] and words[-3:] == [str(step.size_in), "->", str(step.size)]
    crops = [(w[-3], w[-1]) for w in body if w[2] == "crop"]
    # the arrows line up in one column
    assert len({line.index(" -> ") for line in lines[3:-1]}) == 1
    assert crops == [("64", "56"), ("136", "104"), ("280", "200"), ("568", "392")]
    assert lines[-1] == "output 388"


def test_shapes_unet_options_and_pairs(capsys):
    code, out, _ = run(capsys, "shapes", "unet", "64x96", "--depth", "2", "--padding", "same")
    assert code == 0 and out.splitlines()[-1] == "output 64x96"
    assert "copy skip from encoder.1" in out


def test_shapes_unet_invalid_size_exits_2_with_the_message(capsys):
    code, out, err = run(capsys, "shapes", "unet", "570")
    assert code == 2 and out == ""
    assert "U-Net input 570 is invalid" in err and "encoder.1 (level 1)" in err and "556 and 572" in err
    assert "Traceback" not in err


def test_shapes_conv(capsys):
    code, out, _ = run(capsys, "shapes", "conv", "--size", "64", "--kernel", "3", "--stride", "2", "--padding", "1")
    assert code == 0
    assert "-> output 32" in out and "[63, 64]" in out and "output_padding=1" in out
    code, out, _ = run(capsys, "shapes", "conv", "--size", "64", "--kernel", "3", "--dilation", "2")
    assert code == 0 and "-> output 60" in out


def test_shapes_transpose_and_pool(capsys):
    code, out, _ = run(capsys, "shapes", "transpose", "--size", "32", "--kernel", "3", "--stride", "2",
                       "--padding", "1", "--output-padding", "1")
    assert code == 0 and "-> output 64" in out
    code, out, _ = run(capsys, "shapes", "pool", "--size", "65", "--kernel", "2", "--ceil-mode")
    assert code == 0 and "-> output 33" in out
    code, out, _ = run(capsys, "shapes", "pool", "--size", "65", "--kernel", "2")
    assert code == 0 and "-> output 32" in out


@pytest.mark.parametrize("argv,needle", [
    (["shapes", "conv", "--size", "2", "--kernel", "5"], "a kernel of 5 with dilation 1 spans 5 pixels"),
    (["shapes", "transpose", "--size", "4", "--kernel", "3", "--stride", "2", "--output-padding", "2"],
     "output_padding=2 must be smaller"),
    (["shapes", "pool", "--size", "8", "--kernel", "2", "--padding", "2"],
     "--padding 2 must be at most half of --kernel 2"),
])
def test_bad_arguments_exit_2_with_the_shapes_message(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_bad_size_text_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["shapes", "unet", "57two"])
    assert exit_info.value.code == 2
    assert "expected a size like 572 or 572x588" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["shapes", "--help"], ["shapes", "unet", "--help"], ["shapes", "conv", "--help"],
                                  ["shapes", "transpose", "--help"], ["shapes", "pool", "--help"],
                                  ["summary", "--help"]])
def test_help_everywhere(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage: minisegnet" in capsys.readouterr().out


def test_summary_unet(capsys):
    pytest.importorskip("minisegnet.models", reason="minisegnet.models not available")
    code, out, err = run(capsys, "summary", "unet", "--input", "188", "--base-channels", "8")
    assert code == 0 and err == ""
    assert "UNet" in out and "[1, 2, 4, 4]" in out
    from minisegnet.models import UNet
    total = sum(int(p.size) for p in UNet(1, 2, base_channels=8).parameters())
    assert f"Total params: {total:,}" in out
    assert "Not the paper's U-Net, which has 31,030,658 parameters: base_channels=8 (paper: 64)." in out


def test_summary_unet_default_is_the_papers_network(capsys):
    code, out, err = run(capsys, "summary", "unet")
    assert code == 0 and err == ""
    assert "Input size: [1, 1, 572, 572]" in out and "[1, 2, 388, 388]" in out
    assert "Total params: 31,030,658" in out and "This is the paper's U-Net" in out
    code, out, _ = run(capsys, "summary", "unet", "--in-channels", "3", "--batch-norm")
    assert code == 0 and "in_channels=3 (paper: 1), batch_norm=True (paper: False)" in out


def test_summary_deeplab_runs_with_its_default_input(capsys):
    code, out, err = run(capsys, "summary", "deeplabv3plus")
    assert code == 0 and err == ""
    assert "Input size: [1, 3, 572, 572]" in out and "[1, 2, 572, 572]" in out


def test_summary_of_panoptic_deeplab_which_train_accepts_too(capsys):
    code, out, err = run(capsys, "summary", "panoptic-deeplab", "--input", "320")
    assert code == 0 and err == "" and "Input size: [1, 3, 320, 320]" in out


def test_summary_invalid_size_exits_2(capsys):
    pytest.importorskip("minisegnet.models", reason="minisegnet.models not available")
    code, out, err = run(capsys, "summary", "unet", "--input", "570", "--base-channels", "2")
    assert code == 2 and "U-Net input" in err and "556 and 572" in err and "Traceback" not in err


@pytest.mark.parametrize("option, message", [
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--batch-size", "-2"], "--batch-size must be a positive integer, got -2"),
    (["--input", "0x64"], "--input must be a positive size (572 or HxW), got 0x64"),
    (["--input", "0"], "--input must be a positive size (572 or HxW), got 0"),
])
def test_summary_names_its_options_not_the_librarys_input_size(capsys, option, message):
    code, out, err = run(capsys, "summary", "unet", *option)
    assert code == 2 and message in err and "input_size" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("model, option, message", [
    ("unet", ["--in-channels", "0"], "--in-channels must be a positive integer, got 0"),
    ("unet", ["--num-classes", "0"], "--num-classes must be a positive integer, got 0"),
    ("unet", ["--base-channels", "-1"], "--base-channels must be a positive integer, got -1"),
    ("unet", ["--depth", "0"], "--depth must be a positive integer, got 0"),
    ("fcn8s", ["--in-channels", "-3"], "--in-channels must be a positive integer, got -3"),
    ("segnet", ["--num-classes", "0"], "--num-classes must be a positive integer, got 0"),
])
def test_summary_names_its_numeric_options_not_the_models_arguments(capsys, model, option, message):
    code, out, err = run(capsys, "summary", model, *option)
    assert code == 2 and message in err and "_" not in err.split("error:")[1] and "Traceback" not in err, err


def test_summary_unet_depth_the_input_cannot_take_names_the_options_and_the_rule(capsys, monkeypatch):
    """--depth 10 at the default 572: the input's rule first, as options (on the old code the model was
    built first and refused its 475 GiB of weights as "UNet: base_channels=64, depth=10"; on a machine
    with that memory it would have built them before the size error)."""
    from minisegnet import checks

    code, out, err = run(capsys, "summary", "unet", "--depth", "10")
    assert (code, out) == (2, "") and err == (
        "minisegnet summary: error: --input 572 does not fit --depth 10: U-Net input 572x572 is invalid (valid "
        "padding, depth 10): encoder.6 (level 6) would max-pool an odd size 1; the smallest valid size is 12284; "
        "the deepest --depth it fits is 5\n")
    code, out, err = run(capsys, "summary", "unet", "--depth", "40", "--base-channels", "1")
    assert code == 2 and err == ("minisegnet summary: error: --depth must be at most 32 (every level halves the "
                                 "size, so the input would need more than 2**40 pixels per side), got 40\n")
    # a size that fits, weights that do not: named as options too, before any layer is built
    monkeypatch.setattr(checks, "memory_bytes", lambda: 2 ** 30)
    code, out, err = run(capsys, "summary", "unet", "--depth", "10", "--input", "12284")
    assert code == 2 and err == (
        "minisegnet summary: error: UNet: --in-channels 1, --num-classes 2, --base-channels 64, --depth 10 gives the model about 127,417,279,168 "
        "weights (474.7 GiB as float32), more than this machine's memory (1.0 GiB); use fewer channels or levels\n")


def test_shapes_conv_accepts_same_and_valid_padding_as_the_library_does(capsys):
    code, out, err = run(capsys, "shapes", "conv", "--size", "9", "--kernel", "4", "--padding", "same")
    assert code == 0 and err == "" and "-> output 9" in out
    assert "total padding d(k-1) = 3 per axis, 1 top/left and 2 bottom/right" in out
    code, out, _ = run(capsys, "shapes", "conv", "--size", "9", "--kernel", "3", "--padding", "valid")
    assert code == 0 and "-> output 7" in out
    code, _, err = run(capsys, "shapes", "conv", "--size", "9", "--kernel", "3", "--padding", "same", "--stride", "2")
    assert code == 2 and "padding='same' needs stride 1" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["shapes", "conv", "--size", "9", "--kernel", "3", "--padding", "full"])
    assert exit_info.value.code == 2 and "expected an integer >= 0, 'same' or 'valid'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    (["conv", "--size", "9", "--kernel", "0"], "argument --kernel: must be at least 1, got 0"),
    (["conv", "--size", "9", "--kernel", "3", "--stride", "0"], "argument --stride: must be at least 1, got 0"),
    (["conv", "--size", "9", "--kernel", "3", "--dilation", "0"], "argument --dilation: must be at least 1, got 0"),
    (["conv", "--size", "9", "--kernel", "3", "--padding", "-1"], "argument --padding: expected an integer >= 0"),
    (["transpose", "--size", "9", "--kernel", "3", "--padding", "-1"], "argument --padding: must be at least 0"),
    (["transpose", "--size", "9", "--kernel", "3", "--output-padding", "-1"],
     "argument --output-padding: must be at least 0, got -1"),
    (["pool", "--size", "9", "--kernel", "2", "--stride", "0"], "argument --stride: must be at least 1, got 0"),
    (["pool", "--size", "9", "--kernel", "x"], "argument --kernel: expected an integer, got 'x'"),
])
def test_shapes_options_are_named_as_options(capsys, argv, words):
    """A bad --kernel is named --kernel (the library's message said kernel_size)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["shapes", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and words in err, err


def test_shapes_pool_prints_the_rule_with_its_numbers(capsys):
    code, out, _ = run(capsys, "shapes", "pool", "--size", "5", "--kernel", "2")
    assert code == 0 and "o = floor((i + 2p - d(k-1) - 1) / s) + 1" in out and "= floor(3/2) + 1 = 2" in out
    code, out, _ = run(capsys, "shapes", "pool", "--size", "5", "--kernel", "2", "--ceil-mode")
    assert "-> output 3" in out and "(o-1)s = 4 < i + p = 5: kept" in out
    code, out, _ = run(capsys, "shapes", "pool", "--size", "3", "--kernel", "2", "--padding", "1", "--ceil-mode")
    assert "-> output 2" in out and "dropped, o = 2" in out


def test_summary_keeps_height_and_width_apart(capsys):
    """A non-square --input HxW (every summary test above is square, so swapped axes passed)."""
    assert main(["summary", "unet", "--input", "188x204", "--base-channels", "2"]) == 0
    out = capsys.readouterr().out
    assert "Input size: [1, 1, 188, 204]" in out and "[1, 2, 4, 20]" in out


@pytest.mark.parametrize("model, option, named", [
    ("segnet", ["--padding", "same"], "--padding"),
    ("fcn8s", ["--depth", "3", "--base-channels", "8"], "--base-channels, --depth"),
    ("fcn16s", ["--depth", "3"], "--depth"),
    ("fcn32s", ["--base-channels", "8"], "--base-channels"),
    ("deeplabv3plus", ["--batch-norm"], "--batch-norm"),
    ("panoptic-deeplab", ["--up-mode", "bilinear"], "--up-mode"),
])
def test_summary_refuses_unet_options_for_another_model(capsys, model, option, named):
    """They were accepted and ignored: the table showed a model the options had not changed."""
    code, out, err = run(capsys, "summary", model, *option)
    assert code == 2 and out == ""
    assert err.strip() == f"minisegnet summary: error: {named}: U-Net options, which {model} does not take"


def test_summary_unet_defaults_are_the_papers_network(capsys):
    """The U-Net options default to None (so that another model can refuse them); unet fills in the paper's."""
    code, out, _ = run(capsys, "summary", "unet")
    assert code == 0 and "This is the paper's U-Net" in out
    code, out, _ = run(capsys, "summary", "unet", "--padding", "valid", "--depth", "4", "--base-channels", "64",
                       "--up-mode", "transpose")
    assert code == 0 and "This is the paper's U-Net" in out


@pytest.mark.parametrize("depth", ["0", "-1"])
def test_shapes_unet_names_the_depth_option(capsys, depth):
    code, out, err = run(capsys, "shapes", "unet", "572", "--depth", depth)
    assert code == 2 and out == ""
    assert err.strip() == f"minisegnet shapes: error: --depth must be a positive integer, got {depth}"


def test_a_size_of_zero_is_named_as_the_size_argument(capsys):
    """'shapes unet 0' said 'size must be >= 1' (the library's words) without the rule for the argument."""
    assert main(["shapes", "unet", "0"]) == 2
    assert "minisegnet shapes: error: size must be a positive size (572 or HxW), got 0" in capsys.readouterr().err
    assert main(["shapes", "unet", "0x64"]) == 2


def test_a_zero_second_size_is_named_too(capsys):
    assert main(["shapes", "unet", "64x0"]) == 2
    assert "minisegnet shapes: error: size must be a positive size (572 or HxW), got 64x0" in capsys.readouterr().err


def test_summary_takes_any_models_options_as_train_does(capsys):
    """summary had the U-Net's options only: another model's (DeepLab's width, FCN's) could not be shown."""
    from minisegnet.models import build_model
    code, out, err = run(capsys, "summary", "deeplabv3plus", "--input", "64", "--model-arg", "width_mult=0.25",
                         "--model-arg", "atrous_rates=1,2")
    assert code == 0 and err == ""
    small = build_model("deeplabv3plus", 3, 2, width_mult=0.25, atrous_rates=(1, 2))
    assert f"Total params: {sum(int(p.size) for p in small.parameters()):,}" in out
    code, out, err = run(capsys, "summary", "fcn8s", "--input", "64", "--model-arg", "width=8")
    assert code == 0 and f"Total params: {sum(int(p.size) for p in build_model('fcn8s', 3, 2, width=8).parameters()):,}" in out


@pytest.mark.parametrize("model, arg, message", [
    ("fcn8s", "foo=1", "fcn8s has no option 'foo'; its options: width, fc_channels, dropout"),
    ("unet", "depth=3", "--model-arg depth=...: give --depth instead (one way to set it)"),
    ("unet", "batch_norm=true", "--model-arg batch_norm=...: give --batch-norm instead"),
    ("segnet", "num_classes=3", "--model-arg num_classes=...: give --num-classes instead"),
    ("segnet", "in_channels=3", "--model-arg in_channels=...: give --in-channels instead"),
    ("unet", "up_mode=bilinear", "--model-arg up_mode=...: give --up-mode instead"),
])
def test_summary_model_arg_errors_name_the_option(capsys, model, arg, message):
    code, out, err = run(capsys, "summary", model, "--input", "64", "--model-arg", arg)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_summary_model_arg_must_be_key_value(capsys):
    with pytest.raises(SystemExit) as info:
        main(["summary", "segnet", "--model-arg", "width"])
    assert info.value.code == 2
    assert "expected KEY=VALUE (e.g. base_channels=32), got 'width'" in capsys.readouterr().err


@pytest.mark.parametrize("arg", ["base channels=3", "1width=3", "=3", "width-x=3"])
def test_model_arg_key_must_be_a_python_name(capsys, arg):
    """The key becomes a keyword argument: one that is no Python name is argparse's KEY=VALUE
    error, not a model's "unexpected keyword" later."""
    with pytest.raises(SystemExit) as info:
        main(["summary", "segnet", "--model-arg", arg])
    assert info.value.code == 2
    assert f"expected KEY=VALUE (e.g. base_channels=32), got {arg!r}" in capsys.readouterr().err


@pytest.mark.parametrize("text, pair", [
    ("depth=4", ("depth", 4)), ("width_mult=0.5", ("width_mult", 0.5)), ("batch_norm=True", ("batch_norm", True)),
    ("batch_norm=false", ("batch_norm", False)), ("fc_channels=none", ("fc_channels", None)),
    ("fc_channels=None", ("fc_channels", None)), ("padding=valid", ("padding", "valid")),
    (" depth = 4 ", ("depth", 4)), ("atrous_rates=6,12", ("atrous_rates", (6, 12))),
    ("atrous_rates=6,", ("atrous_rates", (6,)))])
def test_model_arg_values_are_int_float_bool_none_text_or_tuple(text, pair):
    """As --model-arg's docstring lists them; "none" (any case) is None, the models' "use the
    default" (e.g. fc_channels, atrous_rates), not the text 'none'."""
    from minisegnet.cli import model_arg
    key, value = model_arg(text)
    assert (key, value) == pair and type(value) is type(pair[1])


def test_summary_takes_none_for_a_model_option_as_its_default(capsys):
    code, out, err = run(capsys, "summary", "fcn8s", "--input", "64", "--model-arg", "fc_channels=none")
    assert code == 0 and err == ""
    assert out == run(capsys, "summary", "fcn8s", "--input", "64")[1]


@pytest.mark.parametrize("argv, size", [(["shapes", "unet"], "64x64x3"), (["shapes", "conv", "--kernel", "3", "--size"], "9x9x9"),
                                        (["summary", "unet", "--input"], "572x572x1")])
def test_a_size_of_three_numbers_is_an_argparse_error(capsys, argv, size):
    """HxW at most: a third number is the size's own error, not a layer's later."""
    with pytest.raises(SystemExit) as info:
        main([*argv, size])
    assert info.value.code == 2
    assert f"expected a size like 572 or 572x588, got {size!r}" in capsys.readouterr().err


def test_summary_unet_depth_limit_is_exact_and_the_deepest_hint_can_be_one(capsys):
    """--depth MAX_UNET_DEPTH + 1 is the first refused as too deep (the test above gives 40); MAX
    itself goes on to the input's rule. And an input that fits one level only says so (depth 1
    is a depth it fits, not "none")."""
    code, _, err = run(capsys, "summary", "unet", "--depth", str(shapes.MAX_UNET_DEPTH + 1))
    assert code == 2 and f"--depth must be at most {shapes.MAX_UNET_DEPTH} " in err
    assert f"got {shapes.MAX_UNET_DEPTH + 1}\n" in err
    code, _, err = run(capsys, "summary", "unet", "--depth", str(shapes.MAX_UNET_DEPTH))
    assert code == 2 and f"--input 572 does not fit --depth {shapes.MAX_UNET_DEPTH}: " in err
    code, _, err = run(capsys, "summary", "unet", "--input", "18", "--depth", "2")
    assert code == 2 and err.endswith("; the deepest --depth it fits is 1\n"), err


def test_no_command_prints_the_help_and_succeeds(capsys):
    """`minisegnet` alone: the usage and the command list, exit status 0 (asking is no error)."""
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: minisegnet") and all(c in out for c in ("train", "shapes", "augment-preview"))
