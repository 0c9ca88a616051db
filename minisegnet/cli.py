"""The ``minisegnet`` command: ``minisegnet --help``."""
import argparse
import os
import sys

__all__ = ["main", "build_parser"]

PREVIEW_MAX_PANELS = 64
"""``augment-preview`` draws at most this many panels (the image and its draws) in one figure."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minisegnet",
        description="A from-scratch segmentation engine: train, evaluate, predict, and explore layer shapes.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_training_commands(commands)
    _add_shape_commands(commands)
    _add_augment_commands(commands)
    return parser


def fails(command, error):
    """A user error: the message (naming the command) and exit status 2, no traceback."""
    print(f"minisegnet {command}: error: {error}", file=sys.stderr)
    return 2


def exit_if_starting_the_command(error):
    """Report ``error``, raised while the package was being imported, as a user error (one
    line, exit status 2) if this process is the ``minisegnet`` command starting up; else return,
    and the import raises it (a library user gets the ``ValueError``).

    The command imports the package before ``main`` runs, so ``main`` cannot catch it. This
    process is the command when ``sys.argv[0]`` is ``"-m"`` (what Python sets while it
    locates the module of ``python -m minisegnet``; also any ``python -m`` package that
    imports minisegnet as it starts) or the console script, ``.../bin/minisegnet``.
    """
    program = sys.argv[0] if sys.argv else ""
    if program == "-m" or os.path.splitext(os.path.basename(program))[0] == "minisegnet":
        print(f"minisegnet: error: {error}", file=sys.stderr)
        raise SystemExit(2)


def _is_terminal(stream):
    """Whether ``stream`` is a terminal: a progress bar redraws itself there, while in a file
    it would leave one line per redraw."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):          # no isatty, or closed
        return False


def model_arg(text):
    """"base_channels=32" -> ("base_channels", 32); values are int, float, bool or text,
    and comma-separated numbers make a tuple: "atrous_rates=1,2,3" -> (1, 2, 3), and with a
    trailing comma one number does: "atrous_rates=6," -> (6,), as Python writes it."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. base_channels=32), got {text!r}")
    value = value.strip()
    if "," in value:
        parts = value[:-1].split(",") if value.endswith(",") else value.split(",")
        try:
            return key.strip(), tuple(int(v) for v in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key.strip()}: a list must be integers, got {value!r}") from None
    for convert in (int, float):
        try:
            return key.strip(), convert(value)
        except ValueError:
            pass
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key.strip(), lowered == "true"
    return key.strip(), None if lowered == "none" else value


def model_args(pairs):
    """The ``--model-arg`` pairs as a dict; a key given twice is ``None`` and the message (else the
    dict and None): the last value would silently win."""
    from . import checks

    twice = checks.repeated([key for key, _ in pairs])
    if twice:
        return None, f"--model-arg {twice[0]}=... is given twice: give each key once"
    return dict(pairs), None


def _add_training_commands(commands):
    """train, evaluate, predict (see minisegnet/train.py and predict.py)."""
    from . import predict, train

    def run_train(args):
        config = {k: getattr(args, k) for k in train.DEFAULTS if getattr(args, k, None) is not None}
        if args.model_arg:
            config["model_args"], twice = model_args(args.model_arg)
            if twice:
                return fails("train", twice)
        if args.no_augment:
            if args.augment is not None:
                return fails("train", "give --augment NAMES or --no-augment, not both")
            config["augment"] = []
        if args.resume:             # first: a resumed run's optimizer is in its config.json, not here
            given = sorted(k for k in config if k not in ("epochs", "backend", "processes"))
            if given:
                options = ", --".join("no-augment" if k == "augment" and args.no_augment
                                      else k.replace("_", "-").replace("model-args", "model-arg") for k in given)
                return fails("train", "--resume continues a run with the settings in its config.json; only "
                                      f"--epochs, --backend and --processes may be given with it, got --{options}")
        optimizer = config.get("optimizer", train.DEFAULTS["optimizer"])
        if "momentum" in config and optimizer != "sgd":
            return fails("train", f"--momentum {config['momentum']!r} is SGD's; --optimizer {optimizer} does not use "
                                  "it (Adam's moments decay by its betas, fixed here): drop --momentum, or use "
                                  "--optimizer sgd")
        task = config.get("task", train.DEFAULTS["task"])
        if "thing_classes" in config and task == "semantic":         # would be recorded and used for nothing
            return fails("train", "--thing-classes is for --task instance or panoptic (the classes whose objects "
                                  "are numbered); --task semantic has no objects")
        try:
            train.run(dict(train.DEFAULTS, **config) if not args.resume else config, out=args.out,
                      resume=args.resume, progress=not args.quiet and _is_terminal(sys.stderr))
        except train.UserError as error:
            return fails("train", error)
        except train.TrainingDiverged as error:
            print(f"minisegnet train: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return 0

    def run_evaluate(args):
        try:
            train.evaluate_checkpoint(args.checkpoint, batch_size=args.batch_size, backend_name=args.backend)
        except train.UserError as error:
            return fails("evaluate", error)
        except KeyboardInterrupt:                   # Ctrl-C: the shell's status, no traceback (as train)
            return 130
        return 0

    def run_predict(args):
        try:
            predict.predict_images(args.checkpoint, args.images, args.out, backend_name=args.backend)
        except train.UserError as error:
            return fails("predict", error)
        except KeyboardInterrupt:
            return 130
        return 0

    from . import tasks
    from .data import AUGMENTATIONS

    d = train.DEFAULTS
    semantic = tasks.SemanticTask
    backend_help = "numpy (CPU) or cupy (GPU); default: MINISEGNET_BACKEND, else numpy"
    train_cmd = commands.add_parser(
        "train", help="train a segmentation model (default: a small U-Net on generated shapes)",
        description="Train a model and write runs/NAME/ (or --out DIR): config.json, metrics.json, "
                    "checkpoint.npz, best.npz, curves.png, predictions.png. With no arguments: a small "
                    "same-padding U-Net on the generated Shapes data, on the CPU, in about a minute.")
    train_cmd.add_argument("--task", choices=tasks.TASK_NAMES,
                           help=f"what to predict per pixel (default {d['task']}: a class; instance and "
                                "panoptic: also which object)")
    train_cmd.add_argument("--model", choices=sorted({m for t in tasks.TASKS.values() for m in t.models}),
                           help=f"architecture (default: the task's; semantic: {semantic.defaults['model']})")
    train_cmd.add_argument("--data", metavar="shapes|roads|cells|PATH",
                           help=f"a generated dataset, or a folder with images/ and index-PNG masks/ "
                                f"(default: the task's; semantic: {semantic.defaults['data']})")
    train_cmd.add_argument("--epochs", type=int, help=f"passes over the training set (default {d['epochs']})")
    train_cmd.add_argument("--batch-size", type=int, help=f"images per step (default {d['batch_size']})")
    train_cmd.add_argument("--size", type=int, help=f"training image size in pixels (default {d['size']})")
    train_cmd.add_argument("--lr", type=float, help=f"learning rate (default {d['lr']:g})")
    train_cmd.add_argument("--seed", type=int, help=f"seed for weights, data and shuffling (default {d['seed']})")
    train_cmd.add_argument("--backend", choices=("numpy", "cupy"), help=backend_help)
    train_cmd.add_argument("--out", metavar="DIR", help="run directory (default runs/MODEL_DATA_seedN)")
    train_cmd.add_argument("--resume", action="store_true",
                           help="continue the run in --out DIR from its checkpoint.npz up to --epochs "
                                "(default: its own), completing what an interruption left undone")
    more = train_cmd.add_argument_group("more options")
    more.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), help=f"default {d['optimizer']}")
    more.add_argument("--schedule", choices=("poly", "cosine", "step", "none"),
                      help=f"learning-rate schedule, stepped after every batch (default {d['schedule']}, DeepLab's: "
                           "lr (1 - step/steps)^0.9; cosine: to 0 along half a cosine; step: /10 after each "
                           "third of the run; none)")
    more.add_argument("--weight-decay", type=float,
                      help="L2 penalty (AdamW: decoupled); default: the optimizer's own, 0 (AdamW 0.01)")
    more.add_argument("--momentum", type=float, help=f"SGD momentum (default {d['momentum']})")
    more.add_argument("--num-train", type=int, help=f"generated training images (default {d['num_train']})")
    more.add_argument("--num-val", type=int, help=f"generated held-out images (default {d['num_val']})")
    more.add_argument("--num-classes", type=int, help="classes of a folder dataset (default: from the masks)")
    more.add_argument("--thing-classes", metavar="C,C",
                      help="the classes of a folder dataset whose objects its instances/ PNGs number, e.g. 1,2 "
                           "(needed by --task instance on a folder; the generated data name their own)")
    more.add_argument("--model-arg", type=model_arg, action="append", metavar="KEY=VALUE",
                      help="model constructor option, repeatable: e.g. padding=valid, base_channels=32, "
                           "depth=4, batch_norm=true, atrous_rates=6,12 (one number: atrous_rates=6,) "
                           "(U-Net defaults: base_channels=8 depth=3 padding=same)")
    more.add_argument("--augment", metavar="NAME,NAME|none",
                      help=f"training augmentations, from: {', '.join(AUGMENTATIONS)} (default: hflip,vflip,rot90 "
                           "for generated data, hflip for a folder)")
    more.add_argument("--no-augment", action="store_true", help="the same as --augment none")
    more.add_argument("--processes", type=int,
                      help="processes sharing each training step, each on a slice of the batch (data "
                           "parallelism, CPU only; default: 2 where minisegnet uses two threads, the batch has "
                           "two images or more, the model no BatchNorm and the data no ignored label, else 1)")
    more.add_argument("--quiet", action="store_true",
                      help="no progress bar (there is none either when stderr is not a terminal, "
                           "e.g. redirected to a log: the epoch lines suffice there)")
    train_cmd.set_defaults(func=run_train)

    evaluate_cmd = commands.add_parser(
        "evaluate", help="re-score a checkpoint on its held-out split",
        description="Rebuild the model and the held-out split from a checkpoint and print the task's scores "
                    "(semantic: pixel accuracy, mean accuracy, mean IU and frequency-weighted IU, as in the "
                    "FCN paper), next to the recorded ones.")
    evaluate_cmd.add_argument("checkpoint", metavar="CHECKPOINT_OR_RUN_DIR",
                              help="a .npz checkpoint, or a run directory (uses its best epoch's model)")
    evaluate_cmd.add_argument("--batch-size", type=int, default=None, help="default: the training batch size")
    evaluate_cmd.add_argument("--backend", choices=("numpy", "cupy"), help=backend_help)
    evaluate_cmd.set_defaults(func=run_evaluate)

    predict_cmd = commands.add_parser(
        "predict", help="segment images with a checkpoint and write overlay PNGs",
        description="Segment images of any size with a run's model, per image: a semantic run writes "
                    "NAME_overlay.png (class colours over the image) and NAME_mask.png (the classes as an index "
                    "PNG, 16-bit past 256 classes); an instance run NAME_instances.png, NAME_ids.png (16-bit "
                    "object ids) and NAME_mask.png; a panoptic run NAME_instances.png, NAME_panoptic.png and "
                    "NAME_panoptic_ids.png (16-bit category * 1000 + id: at most 65 classes). A valid-padding "
                    "U-Net uses the paper's overlap-tile strategy with mirrored borders.")
    predict_cmd.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz checkpoint or a run directory")
    predict_cmd.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, ...)")
    predict_cmd.add_argument("--out", metavar="DIR", required=True, help="the folder to write the PNGs into")
    predict_cmd.add_argument("--backend", choices=("numpy", "cupy"), help=backend_help)
    predict_cmd.set_defaults(func=run_predict)


def _add_shape_commands(commands):
    """shapes, summary (see minisegnet/shapes.py and minisegnet/summary.py)."""
    from . import shapes

    def size_arg(text):
        """"572" -> 572, "572x588" -> (572, 588)."""
        parts = text.lower().split("x")
        if len(parts) > 2 or not all(p.strip().isdigit() for p in parts):
            raise argparse.ArgumentTypeError(f"expected a size like 572 or 572x588, got {text!r}")
        values = tuple(int(p) for p in parts)
        return values[0] if len(values) == 1 else values

    def show(size):
        return "x".join(str(v) for v in size) if isinstance(size, tuple) else str(size)

    def run_unet(args):
        if args.depth < 1:                      # named as the option, as summary names it
            return fails("shapes", f"--depth must be a positive integer, got {args.depth}")
        if min(args.size if isinstance(args.size, tuple) else (args.size,)) < 1:
            return fails("shapes", f"size must be a positive size (572 or HxW), got {show(args.size)}")
        try:
            rows = shapes.unet_trace(args.size, depth=args.depth, padding=args.padding)
        except (ValueError, TypeError) as error:
            return fails("shapes", error)
        print(f"U-Net, depth {args.depth}, {args.padding} 3x3 convolutions: input {show(args.size)}")
        print("level l works at 1/2**l of the input's scale; stage = the UNet module that runs the step")
        before = max(len(show(row.size_in)) for row in rows)   # right-align the sizes before the arrow
        print(f"{'stage':<11} {'level':>5}  {'operation':<26} {'in':>{before}} -> out")
        for row in rows[1:]:
            print(f"{row.stage:<11} {row.level:>5}  {row.operation:<26} {show(row.size_in):>{before}} -> "
                  f"{show(row.size)}")
        print(f"output {show(rows[-1].size)}")
        return 0

    def run_conv(args):
        try:
            out = shapes.conv2d_output_size(args.size, args.kernel, args.stride, args.padding, args.dilation)
            inputs = shapes.conv2d_input_sizes(out, args.kernel, args.stride, args.padding, args.dilation)
        except (ValueError, TypeError) as error:
            return fails("shapes", error)
        print(f"conv2d: size {show(args.size)}, kernel {args.kernel}, stride {args.stride}, "
              f"padding {args.padding}, dilation {args.dilation} -> output {show(out)}")
        if args.padding == "same":
            total = args.dilation * (args.kernel - 1)
            print(f"  'same': total padding d(k-1) = {total} per axis, {total // 2} top/left and "
                  f"{total - total // 2} bottom/right, so o = i")
        else:
            print("  o = floor((i + 2p - d(k-1) - 1) / s) + 1")
        if isinstance(inputs, tuple):
            print(f"  input sizes giving this output: heights {inputs[0]}, widths {inputs[1]}")
        else:
            print(f"  input sizes giving this output: {inputs}")
        if args.padding not in ("same", "valid"):
            op = shapes.conv_transpose2d_output_padding(out, args.size, args.kernel, args.stride,
                                                        args.padding, args.dilation)
            print(f"  the matching conv_transpose2d restores {show(args.size)} with output_padding={show(op)}")
        return 0

    def run_transpose(args):
        try:
            out = shapes.conv_transpose2d_output_size(args.size, args.kernel, args.stride, args.padding,
                                                      args.output_padding, args.dilation)
        except (ValueError, TypeError) as error:
            return fails("shapes", error)
        print(f"conv_transpose2d: size {show(args.size)}, kernel {args.kernel}, stride {args.stride}, "
              f"padding {args.padding}, output_padding {args.output_padding}, dilation {args.dilation} "
              f"-> output {show(out)}")
        print("  o = (i - 1)s - 2p + d(k-1) + output_padding + 1")
        return 0

    def run_pool(args):
        if args.padding > args.kernel // 2:
            return fails("shapes", f"--padding {args.padding} must be at most half of --kernel {args.kernel} "
                                   f"(max_pool2d's rule: no window mostly padding)")
        try:
            out = shapes.max_pool2d_output_size(args.size, args.kernel, args.stride, args.padding,
                                                args.dilation, args.ceil_mode)
        except (ValueError, TypeError) as error:
            return fails("shapes", error)
        stride = args.kernel if args.stride is None else args.stride
        print(f"max_pool2d: size {show(args.size)}, kernel {args.kernel}, stride {stride}, padding "
              f"{args.padding}, dilation {args.dilation}, ceil_mode {args.ceil_mode} -> output {show(out)}")
        for line in _pool_rule(args.size, args.kernel, stride, args.padding, args.dilation, args.ceil_mode):
            print("  " + line)
        return 0

    def run_summary(args):
        from .models import build_model
        from .summary import summary

        # Named as options, before the model is built: not as summary's input_size or the model's
        # arguments ("UNet: in_channels ..."). The U-Net options are checked for every model.
        numbers = [("--batch-size", args.batch_size), ("--in-channels", args.in_channels),
                   ("--num-classes", args.num_classes), ("--base-channels", args.base_channels),
                   ("--depth", args.depth)]
        for option, value in numbers:
            if value is not None and value < 1:
                return fails("summary", f"{option} must be a positive integer, got {value}")
        size = args.input if isinstance(args.input, tuple) else (args.input, args.input)
        if min(size) < 1:
            return fails("summary", f"--input must be a positive size (572 or HxW), got {show(args.input)}")
        unet_given = [option for option, value in (
            ("--base-channels", args.base_channels), ("--depth", args.depth), ("--padding", args.padding),
            ("--batch-norm", args.batch_norm or None), ("--up-mode", args.up_mode)) if value is not None]
        if args.model != "unet" and unet_given:
            return fails("summary", f"{', '.join(unet_given)}: U-Net options, which {args.model} does not take")
        extra, twice = model_args(args.model_arg or [])     # any model's options, as train's --model-arg
        if twice:
            return fails("summary", twice)
        named = {"in_channels", "num_classes"} | ({"base_channels", "depth", "padding", "batch_norm", "up_mode"}
                                                  if args.model == "unet" else set())
        for key in extra:
            if key in named:
                return fails("summary", f"--model-arg {key}=...: give --{key.replace('_', '-')} instead "
                                        "(one way to set it)")
        options = {}
        in_channels = args.in_channels
        if args.model == "unet":
            for option in ("base_channels", "depth", "padding", "up_mode"):     # default: the paper's network
                if getattr(args, option) is None:
                    setattr(args, option, _UNET_PAPER[option])
            options = dict(base_channels=args.base_channels, depth=args.depth, padding=args.padding,
                           batch_norm=args.batch_norm, up_mode=args.up_mode)
            if in_channels is None:
                in_channels = 1          # the paper's grayscale microscopy tiles
            error = _unet_options_error(args, size, in_channels, show(args.input))
            if error:
                return fails("summary", error)
        elif in_channels is None:
            in_channels = 3
        options.update(extra)
        try:
            model = build_model(args.model, in_channels, args.num_classes, **options)
            summary(model, (args.batch_size, in_channels) + size)
        except (ValueError, TypeError, RuntimeError) as error:    # RuntimeError: a cupy backend CuPy cannot run
            return fails("summary", error)
        if args.model == "unet":
            print(_unet_against_the_paper(dict(options, in_channels=in_channels, num_classes=args.num_classes)))
        return 0

    def int_at_least(low):
        """An argparse type: an integer >= ``low`` (argparse names the option in its message)."""
        def convert(text):
            try:
                value = int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
            if value < low:
                raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
            return value
        return convert

    def conv_padding_arg(text):
        """"1" -> 1; "same" and "valid" as the library accepts them."""
        if text in ("same", "valid"):
            return text
        try:
            return int_at_least(0)(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected an integer >= 0, 'same' or 'valid', got {text!r}") from None

    def conv_options(parser, padding_help, padding_type=int_at_least(0)):
        parser.add_argument("--size", type=size_arg, required=True, help="input size: 64 or HxW")
        parser.add_argument("--kernel", type=int_at_least(1), required=True, help="kernel size k")
        parser.add_argument("--stride", type=int_at_least(1), default=1, help="stride s (default 1)")
        parser.add_argument("--padding", type=padding_type, default=0, help=padding_help)
        parser.add_argument("--dilation", type=int_at_least(1), default=1, help="dilation d (default 1)")

    shapes_cmd = commands.add_parser(
        "shapes", help="layer output sizes and the U-Net size walk",
        description="Size arithmetic from minisegnet.shapes, the formulas the layers themselves use.")
    kinds = shapes_cmd.add_subparsers(dest="kind", metavar="KIND", required=True)

    unet = kinds.add_parser("unet", help="the U-Net's size at every level, crops included",
                            description="Trace an input size through the U-Net: every conv, pool, "
                                        "up-conv and skip crop; an invalid size names the failing level "
                                        "and the nearest valid sizes.")
    unet.add_argument("size", type=size_arg, help="input size: 572 or HxW")
    unet.add_argument("--depth", type=int, default=4, help="number of 2x2 poolings (default 4)")
    unet.add_argument("--padding", choices=("valid", "same"), default="valid",
                      help="3x3 conv padding: valid (the paper, default) or same")
    unet.set_defaults(func=run_unet)

    conv = kinds.add_parser("conv", help="conv2d output size and the input sizes sharing it",
                            description="conv2d output size, every input size giving that output (the "
                                        "stride ambiguity) and the transposed conv's output_padding.")
    conv_options(conv, "zero padding p, or 'same' (stride 1: output size = input size) or 'valid' (0); "
                       "default 0", padding_type=conv_padding_arg)
    conv.set_defaults(func=run_conv)

    transpose = kinds.add_parser("transpose", help="conv_transpose2d output size",
                                 description="conv_transpose2d output size.")
    conv_options(transpose, "padding p removed from each side (default 0)")
    transpose.add_argument("--output-padding", type=int_at_least(0), default=0,
                           help="extra size on one side, 0 <= output_padding < max(stride, dilation)")
    transpose.set_defaults(func=run_transpose)

    pool = kinds.add_parser("pool", help="max_pool2d output size (PyTorch's ceil_mode rule)",
                            description="max_pool2d output size; stride defaults to the kernel size.")
    pool.add_argument("--size", type=size_arg, required=True, help="input size: 64 or HxW")
    pool.add_argument("--kernel", type=int_at_least(1), required=True, help="kernel size k")
    pool.add_argument("--stride", type=int_at_least(1), default=None, help="stride s (default: the kernel size)")
    pool.add_argument("--padding", type=int_at_least(0), default=0, help="-inf padding p, at most k/2 (default 0)")
    pool.add_argument("--dilation", type=int_at_least(1), default=1, help="dilation d (default 1)")
    pool.add_argument("--ceil-mode", action="store_true", help="round the output size up")
    pool.set_defaults(func=run_pool)

    summary_cmd = commands.add_parser(
        "summary", help="a model's layers: output shapes, parameters, multiply-adds, receptive field",
        description="Print a torchinfo-style table of a model, computed from the shape formulas "
                    "(fast even for the full 572x572 U-Net).")
    summary_cmd.add_argument("model", choices=("unet", "fcn8s", "fcn16s", "fcn32s", "segnet", "deeplabv3plus",
                                               "panoptic-deeplab"), help="which model")
    summary_cmd.add_argument("--input", type=size_arg, default=572, help="input size: 572 or HxW (default 572)")
    summary_cmd.add_argument("--in-channels", type=int, default=None,
                             help="image channels (default 1 for unet, the paper's grayscale tiles; 3 otherwise)")
    summary_cmd.add_argument("--num-classes", type=int, default=2, help="output classes (default 2)")
    summary_cmd.add_argument("--batch-size", type=int, default=1, help="N (default 1)")
    # default None: given for another model, they are refused rather than ignored (run_summary)
    unet_options = summary_cmd.add_argument_group("U-Net options (unet only)")
    unet_options.add_argument("--base-channels", type=int, help="first level's channels (default 64)")
    unet_options.add_argument("--depth", type=int, help="number of poolings (default 4)")
    unet_options.add_argument("--padding", choices=("valid", "same"), help="3x3 conv padding (default valid)")
    unet_options.add_argument("--batch-norm", action="store_true", help="BatchNorm after every 3x3 conv")
    unet_options.add_argument("--up-mode", choices=("transpose", "bilinear"),
                              help="2x2 up-convolution (default transpose) or bilinear x2 + 1x1 conv")
    summary_cmd.add_argument("--model-arg", type=model_arg, action="append", metavar="KEY=VALUE",
                             help="any model's constructor option, repeatable, as train takes it: e.g. "
                                  "width_mult=0.5, atrous_rates=6,12 (one number: atrous_rates=6,), "
                                  "width=32 (FCN/SegNet); U-Net's named options above come first")
    summary_cmd.set_defaults(func=run_summary)


def _unet_options_error(args, size, in_channels, shown):
    """What is wrong with ``summary unet``'s options, named as options, from the shape formulas and the
    weight count (nothing is built); None when nothing is. The input size against the depth first (a
    rule that no machine lifts), then the weights against this machine's memory."""
    from . import checks, shapes
    from .models.unet import weight_count

    depth, padding = args.depth, args.padding
    if depth > shapes.MAX_UNET_DEPTH:
        return (f"--depth must be at most {shapes.MAX_UNET_DEPTH} (every level halves the size, so the input "
                f"would need more than 2**{depth} pixels per side), got {depth}")

    def size_error(d):
        """Why the input cannot go through ``d`` levels, or None."""
        try:
            shapes.unet_output_size(size, d, padding)
        except ValueError as error:
            return error
        return None

    error = size_error(depth)
    if error:
        deepest = max((d for d in range(1, depth) if size_error(d) is None), default=None)
        return (f"--input {shown} does not fit --depth {depth}: {error}"
                + (f"; the deepest --depth it fits is {deepest}" if deepest else ""))
    try:
        checks.check_weights(weight_count(in_channels, args.num_classes, args.base_channels, depth, args.up_mode),
                             "UNet", f"--in-channels {in_channels}, --num-classes {args.num_classes}, "
                                     f"--base-channels {args.base_channels}, --depth {depth}")
    except checks.TooLargeError as error:
        return str(error)
    return None


def _pool_rule(size, k, s, p, d, ceil_mode):
    """The lines that show how ``shapes.max_pool2d_output_size`` got its answer."""
    rounding = "ceil" if ceil_mode else "floor"
    lines = [f"o = {rounding}((i + 2p - d(k-1) - 1) / s) + 1"
             + ("; then o -= 1 if the last window would start in the right padding: (o-1)s >= i + p"
                if ceil_mode else "")]
    if isinstance(size, tuple):
        return lines
    numerator = size + 2 * p - d * (k - 1) - 1
    o = (numerator // s if not ceil_mode else -(-numerator // s)) + 1
    lines.append(f"  = {rounding}(({size} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {rounding}({numerator}/{s}) + 1 = {o}")
    if ceil_mode:
        start = (o - 1) * s
        if start >= size + p:
            lines.append(f"the last window would start at (o-1)s = {start} >= i + p = {size + p}, in the right "
                         f"padding: dropped, o = {o - 1}")
        else:
            lines.append(f"the last window starts at (o-1)s = {start} < i + p = {size + p}: kept")
    return lines


# The network of Ronneberger et al. (2015): grayscale 572x572 tiles, two classes, valid 3x3 convs,
# 64 channels at level 0, four 2x2 pools, 2x2 up-convs, no BatchNorm.
_UNET_PAPER = dict(in_channels=1, num_classes=2, base_channels=64, depth=4, padding="valid", batch_norm=False,
                   up_mode="transpose")


def _unet_against_the_paper(options):
    """One line: whether ``summary unet`` showed the paper's network, and if not, which options differ."""
    differ = [f"{key}={options[key]!r} (paper: {value!r})" for key, value in _UNET_PAPER.items()
              if options[key] != value]
    if not differ:
        return ("This is the paper's U-Net (1-channel input, 2 classes, valid convs, no BatchNorm; its dropout "
                "layers, which have no parameters, are not built in). The paper prints no parameter count; its "
                "layer list sums to the total above, 31,030,658.")
    return "Not the paper's U-Net, which has 31,030,658 parameters: " + ", ".join(differ) + "."


def _add_augment_commands(commands):
    """augment-preview: one image under several random draws of the named augmentations."""

    def run_preview(args):
        import math

        import numpy as np

        from . import checks, data, run_config
        from .viz.sampling import augment_preview_bytes, plot_augment_preview

        try:
            names = run_config.check_augment_names([n.strip() for n in args.augment.split(",")], args.augment,
                                                   or_none=False)
        except run_config.UserError as error:
            return fails("augment-preview", str(error))
        out = os.path.join(args.out, "augment_preview.png") if os.path.isdir(args.out) else args.out
        if not out.lower().endswith(".png"):
            return fails("augment-preview", f"--out {args.out!r}: must name a .png file (or an existing folder "
                                            "to write augment_preview.png into)")
        folder = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(folder):
            return fails("augment-preview", f"--out {args.out!r}: the folder {folder!r} does not exist")
        try:
            run_config.make_out_folder(folder)               # it exists: whether a file can be written there
        except run_config.UserError as error:
            return fails("augment-preview", str(error))
        if args.draws < 1 or args.index < 0 or args.seed < 0:
            return fails("augment-preview", f"--draws must be >= 1 and --index, --seed >= 0, got {args.draws}, "
                                            f"{args.index}, {args.seed}")
        if args.size < data.toy.MIN_SIZE:            # the one rule, as train says it (not ">= 1" for 0)
            return fails("augment-preview", f"--size must be at least {data.toy.MIN_SIZE} pixels for the "
                                            f"built-in --data {args.data} (its scenes need the room), got {args.size}")
        datasets = {"shapes": data.Shapes, "roads": data.Roads, "cells": data.Cells}
        panels = 1 + len(names) * args.draws
        if panels > PREVIEW_MAX_PANELS:
            return fails("augment-preview", f"--draws {args.draws} of {len(names)} augmentation(s) make {panels} "
                                            f"panels; one figure holds at most {PREVIEW_MAX_PANELS} (the image "
                                            "and its draws): draw fewer")
        deformations = sum(hasattr(data.AUGMENTATIONS[n](), "sample_positions") for n in names) * args.draws
        channels = datasets[args.data].in_channels
        needed = augment_preview_bytes(args.size, args.size, channels, panels, deformations)
        limit = checks.memory_bytes()
        if limit is not None and needed > limit:
            per_pixel = needed // args.size ** 2
            largest = math.isqrt(limit // per_pixel)
            return fails("augment-preview", f"--size {args.size}: {panels} panels of {args.size}x{args.size} "
                                            f"pixels ({args.data}, {channels} channel(s)) take about "
                                            f"{checks.human_bytes(needed)} to draw ({per_pixel} bytes per pixel), "
                                            f"more than this machine's memory ({checks.human_bytes(limit)}); "
                                            f"the largest --size that fits is {largest}"
                                            + (" (or draw fewer panels: --draws, --augment)" if panels > 1 and
                                               augment_preview_bytes(1, 1, channels, 1) < per_pixel else ""))
        try:
            dataset = datasets[args.data](num_samples=args.index + 1, size=args.size, seed=args.seed)
        except ValueError as error:
            return fails("augment-preview", f"--size: {error}")
        image, mask = dataset[args.index][:2]
        transforms = [(name, data.AUGMENTATIONS[name]()) for name in names for _ in range(args.draws)]
        plot_augment_preview(image, mask, transforms, np.random.default_rng(args.seed), palette=dataset.palette,
                             path=out, columns=min(args.draws + 1, 5) if len(names) == 1 else 4)
        print(f"wrote {out}: {args.data} image {args.index} and {args.draws} draw(s) of {', '.join(names)}")
        return 0

    preview = commands.add_parser(
        "augment-preview", help="draw one image under random draws of the augmentations",
        description="Draw one generated image and several random draws of each named augmentation (the "
                    "names of train --augment), the labels tinted on top; for the deformations (elastic, "
                    "affine), arrows from output pixels to the input points they show.")
    preview.add_argument("--augment", default="elastic,affine,color", metavar="NAME,NAME",
                         help="augmentations to draw (default: elastic,affine,color)")
    preview.add_argument("--data", choices=("shapes", "roads", "cells"), default="cells",
                         help="which generated dataset (default cells)")
    preview.add_argument("--size", type=int, default=96, help="image size (default 96)")
    preview.add_argument("--index", type=int, default=0, help="which image (default 0)")
    preview.add_argument("--draws", type=int, default=2, help="random draws per augmentation (default 2)")
    preview.add_argument("--seed", type=int, default=0, help="seed of the data and the draws (default 0)")
    preview.add_argument("--out", default="augment_preview.png",
                         help="the PNG to write, or a folder to write augment_preview.png into "
                              "(default augment_preview.png)")
    preview.set_defaults(func=run_preview)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        # The output went into a pipe that closed early (`... | head`): not an error.
        # Point stdout at /dev/null so Python's own flush at exit stays quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
