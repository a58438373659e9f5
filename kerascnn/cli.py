"""The `kerascnn` command: argument parsing only; every command calls the public API.

Commands import kerascnn's modules (and with them Keras and TensorFlow) only when they run,
so `kerascnn --help`, `--version` and argument mistakes answer at once. TensorFlow's native
start-up logs are dropped unless `--verbose` or `--debug` is given. Every user mistake ends
in one line `kerascnn COMMAND: error: ...` and exit status 2; anything else is a bug in kerascnn,
said as one (exit status 1); `--debug` shows the traceback.
"""

import argparse
import contextlib
import difflib
import errno
import fnmatch
import json
import os
import re
import sys
import threading
import zipfile

from kerascnn.errors import InputError

KINDS = ("image", "signal", "volume")
# Named data sets (kerascnn.data.sources: "digits" and KERAS_DATASETS), repeated so that a
# mistake answers without importing Keras; tests/test_cli.py checks that they agree.
NAMED_DATA = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100")
MODEL_CATALOG = os.path.join("models", "catalog.json")
RECIPE_CATALOG = os.path.join("training", "recipes.json")
# kerascnn.training.precision.PRECISIONS, repeated: importing it would load Keras before
# --help (tests/training/test_precision.py checks that the two agree).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
# kerascnn.transfer.applications.PREFIX, repeated: a keras.applications source, told apart
# without importing Keras.
APPLICATIONS = "keras.applications."

# Options whose value may start with "-" (argparse would take "-28,28,1" for an option).
_SIGNED_VALUE_OPTIONS = ("--input-shape",)

# Lines the TensorFlow C++ runtime writes to file descriptor 2 itself (absl format, which
# TF_CPP_MIN_LOG_LEVEL does not silence before absl::InitializeLog), and their continuations.
_NATIVE_LOG = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] "
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler)"
)

# libjpeg, inside TensorFlow's JPEG decoder, writes these to descriptor 2 for each damaged JPEG it
# still decodes, at every decode (every epoch of a streamed folder): summarised in one line.
_LIBJPEG_WARNING = re.compile(
    rb"^(Corrupt JPEG data: |Premature end of JPEG file|Invalid SOS parameters for sequential JPEG"
    rb"|Inconsistent progression sequence for component|Warning: unknown JFIF revision number"
    rb"|Unsupported marker type 0x)")


def _input_shape(text):
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 28,28,1; got {text!r}") from None
    if not 2 <= len(sizes) <= 4 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected 2 to 4 positive sizes, channels last, like 28,28,1 (image), 40,1 "
            f"(signal) or 16,16,16,1 (volume); got {text!r}"
        )
    return sizes


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None


def _positive_int(text):
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return value


def _whole_number(text):
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive whole number; got {text!r}")
    return value


def _number(low, high, expected, *, low_allowed=False):
    """An argparse type: a number above `low` (or equal, with `low_allowed`) and below `high`."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if not ((low <= value) if low_allowed else (low < value)) or not value < high:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value
    return parse


_positive_float = _number(0, float("inf"), "a positive number")
_fraction = _number(0, 1, "a fraction from 0 to below 1, such as 0.1", low_allowed=True)


def _error_score(text):
    if text not in ("nan", "raise"):
        raise argparse.ArgumentTypeError(f"expected nan or raise; got {text!r}")
    return text if text == "raise" else float(text)


def _model_option(text):
    """Parses --option KEY=VALUE: VALUE as a JSON literal (3, 0.5, true, null) or else a string."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"expected a builder option as KEY=VALUE, like norm=batch or width_multiplier=3; "
            f"got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _default_out(args):
    """Returns runs/MODEL-DATA-seedSEED, plus what else the command line sets (-e5, -flip...).

    Two commands that differ in epochs, recipe, augmentation or learning rate get two folders,
    so the README's commands run one after the other without `--out`.
    """
    data = os.path.splitext(os.path.basename(str(args.data).rstrip("/")))[0].replace(":", "_")
    parts = [os.path.splitext(os.path.basename(args.model))[0], data]
    if args.recipe != "quick":
        parts.append(args.recipe)
    for flag, value in (("e", args.epochs), ("b", args.batch_size), ("lr", args.learning_rate),
                        ("val", args.validation_split)):
        if value is not None:
            parts.append(f"{flag}{value:g}")
    if args.augment:
        parts.append("aug-" + re.sub(r"[^\w.=]+", "_", args.augment).replace("=", ""))
    for key, value in sorted(dict(getattr(args, "option", None) or []).items()):
        text = str(value) if isinstance(value, (int, float)) else "_" + str(value)
        parts.append(key + re.sub(r"[^\w.]+", "_", text))
    for value in (args.kind, args.task, args.loss):
        if value:
            parts.append(value)
    if args.precision not in (None, "auto"):
        parts.append(args.precision)
    return os.path.join("runs", "-".join(parts) + f"-seed{args.seed}")


def _check_keras_file(path, command):
    """Raises ValueError naming `path` if it is not a readable, undamaged `.keras` archive, or
    holds Lambda layers (code stored in the file, which Keras' safe mode refuses to run)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            config = archive.read("config.json") if "config.json" in names else b""
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise InputError(
            f"{path} is not a readable .keras file ({error}): it is damaged or truncated, or "
            "not a Keras 3 model. Save the model again with model.save(...)."
        ) from None
    if damaged is not None:
        raise InputError(
            f"{path} is damaged: its member {damaged} fails its checksum. Save the model "
            "again, or use the run's best.keras."
        )
    if "config.json" not in names:
        raise InputError(f"{path} is a zip file but not a .keras model (no config.json).")
    from kerascnn.files import config_objects  # no Keras

    if any(c["class_name"] == "Lambda" for c in config_objects(json.loads(config or b"{}"))):
        raise InputError(
            f"{path} holds a Lambda layer: loading it runs Python code stored in the file, "
            f"which `kerascnn {command}` refuses (Keras' safe mode). Only if you trust its "
            "origin, load it in Python with keras.models.load_model(path, safe_mode=False) "
            f"and pass the model to kerascnn.{command}(...).")


def _check_writable(folder, option="--out", *, create=False):
    """Raises ValueError naming `folder` unless it is, or can be made, a folder files can be
    written to; creates it only when `create` (a run folder is made by the command itself,
    once every option has been checked)."""
    path = os.path.abspath(folder)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise InputError(f"{option} {folder} is not writable: it is a file, not a folder; "
                         "choose another.")
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"{option} {folder} is not writable: {existing} is a file; choose "
                         "another.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{option} {folder} is not writable ({existing} is not); choose a "
                         "folder you may write to.")
    if create:
        os.makedirs(path, exist_ok=True)


def _catalog(relative):
    """A catalog kerascnn ships beside its modules (models/catalog.json, training/recipes.json):
    names the command line checks without importing Keras."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), relative),
              encoding="utf-8") as f:
        return json.load(f)


def _check_name(value, known, what, how):
    if value not in known:
        close = difflib.get_close_matches(str(value), known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown {what} {value!r}.{hint} {how}")


def _check_model_name(model):
    """Refuses an unknown registry name at once (a .keras file is checked by its loader)."""
    if not model.endswith(".keras"):
        _check_name(model, list(_catalog(MODEL_CATALOG)), "model",
                    "`kerascnn list` shows the models; a .keras file works too.")


def _check_recipe(recipe):
    _check_name(recipe, list(_catalog(RECIPE_CATALOG)), "recipe",
                "`kerascnn recipes` shows the recipes.")


def _check_data(data):
    """Refuses, at once, a data source that is neither a named set nor an existing path."""
    if data in NAMED_DATA or data.startswith("tfds:") or os.path.exists(data):
        return
    if os.sep in data or data.endswith((".npz", ".json", ".tar.gz", ".tgz", ".tar")):
        raise InputError(f"--data {data}: no such file or folder.")
    _check_name(data, list(NAMED_DATA), "data set",
                "Use digits, mnist, fashion_mnist, cifar10, cifar100, tfds:NAME, a .npz file, "
                "an image folder (or a .tar.gz of one) or a TFRecords spec .json.")


def _model_for(args):
    import kerascnn

    if args.model.endswith(".keras"):
        import keras

        _check_keras_file(args.model, "inspect")
        kerascnn.register_keras_objects()
        return keras.models.load_model(args.model)
    return kerascnn.build_model(args.model, input_shape=args.input_shape, num_classes=args.num_classes)


def cmd_list(args):
    # The registry's catalog (kerascnn.models.registry.CATALOG_PATH): no Keras to import.
    for name, entry in _catalog(MODEL_CATALOG).items():
        if args.pattern and not fnmatch.fnmatch(name, args.pattern):
            continue
        shape = "×".join(map(str, entry["default_input_shape"]))
        outputs = "" if entry["outputs"] == "predictions" else f" [outputs: {entry['outputs']}]"
        print(f"{name:18s} {shape:12s} {entry['paper']}{outputs}")


def cmd_inspect(args):
    _check_model_name(args.model)
    import kerascnn

    report = kerascnn.inspect(_model_for(args), batch_size=args.batch_size,
                              input_shape=args.input_shape, optimizer=args.optimizer)
    print({"text": report.to_text, "markdown": report.to_markdown, "json": report.to_json}[args.format]())
    if args.plot:
        _check_writable(os.path.dirname(os.path.abspath(args.plot)), "the folder of --plot",
                        create=True)
        report.plot(args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)


def _describe(data):
    sizes = ", ".join(f"{data.size(split)} {split}" for split in data.split_names)
    shape = "×".join(map(str, data.input_shape))
    return f"data: {data.name}, read as {data.kind}s of shape {shape} ({sizes})"


def cmd_train(args):
    _check_model_name(args.model)
    _check_recipe(args.recipe)
    _check_data(args.data)
    if args.model.endswith(".keras"):
        _check_keras_file(args.model, "train")
    options = dict(args.option or [])
    if len(options) < len(args.option or []):
        keys = [key for key, _ in args.option]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise InputError(f"--option {', '.join(twice)} is given twice; give each option once.")
    if options and args.model.endswith(".keras"):
        raise InputError(f"--option sets builder options of a registry model; {args.model} is "
                         "built already.")
    out = args.out or _default_out(args)
    _check_writable(out)
    import kerascnn
    from kerascnn.evaluation.metrics import headline

    result = kerascnn.train(
        args.model, args.data, recipe=args.recipe, epochs=args.epochs,
        batch_size=args.batch_size, augment=args.augment, out=out,
        seed=args.seed, strategy=args.strategy, learning_rate=args.learning_rate,
        validation_split=args.validation_split, data_dir=args.data_dir, kind=args.kind,
        stream="auto" if args.stream is None else args.stream, cache=args.cache,
        model_options=options or None, precision=args.precision, task=args.task, loss=args.loss,
        resume=not args.fresh,
    )
    input_shape = tuple(result.model.inputs[0].shape[1:])
    kind = {2: "signal", 3: "image", 4: "volume"}.get(len(input_shape), "example")
    summary = headline(result.metrics)
    print(f"examples read as {kind}s of shape {'×'.join(map(str, input_shape))}")
    print(f"run folder: {result.run_dir}")
    print(f"test metrics: {json.dumps(summary)}")


def _history_of(model_path):
    """Returns the run's history.csv for a run folder or a model file inside one, or None."""
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    path = os.path.join(folder, "history.csv")
    return path if os.path.isfile(path) else None


def cmd_evaluate(args):
    if args.data is not None:
        _check_data(args.data)
    if os.path.isdir(args.model):
        pass  # a run folder: evaluate() reads its model, data source and test split
    elif args.model.endswith(".keras"):
        _check_keras_file(args.model, "evaluate")
        if args.data is None:
            raise InputError(
                f"a model file needs --data (e.g. --data digits); or pass the run folder "
                f"{os.path.dirname(args.model) or '.'} to use the run's own test split."
            )
    else:
        raise FileNotFoundError(f"{args.model} is neither a run folder nor a .keras file.")
    if args.out:
        _check_writable(args.out)
    history = args.history or _history_of(args.model)
    import kerascnn

    # Only the options given: evaluate() applies its own defaults to the rest.
    given = {key: value for key, value in (("data_dir", args.data_dir), ("split_seed", args.seed),
                                           ("task", args.task)) if value is not None}
    report = kerascnn.evaluate(args.model, args.data, history=history,
                               mc_dropout=args.mc_dropout, tta=args.tta, out=args.out, **given)
    print(report.summary())
    if history:
        print(f"learning curves from {history}")
    if args.out:
        print(f"report written to {os.path.join(args.out, 'report.md')} "
              "(also report.html, metrics.json and the plots)")
    else:
        print("nothing written: pass --out FOLDER to keep the report, metrics and plots")


def cmd_preview(args):
    _check_data(args.data)
    folder = os.path.dirname(os.path.abspath(args.out))
    _check_writable(folder, "the folder of --out")
    from kerascnn import data

    loaded = data.load(args.data, data_dir=args.data_dir, kind=args.kind, task=args.task)
    print(_describe(loaded))
    os.makedirs(folder, exist_ok=True)
    data.preview(loaded, args.augment, args.out, n=args.n, seed=args.seed)
    print(f"preview written to {args.out}")


def cmd_recipes(args):
    # kerascnn.training.recipes.CATALOG_PATH: no Keras to import.
    for name, fields in _catalog(RECIPE_CATALOG).items():
        print(json.dumps(fields) if args.all else name)


def cmd_tune(args):
    from kerascnn.tuning.study import (  # no Keras: mistakes answer at once
        SETTING_KEYS, check_settings, load_study)

    study = load_study(args.study) if args.study else {}
    for key in ("model", "data", "folds", "tuner", "max_trials", "epochs", "out", "seed",
                "objective", "task", "prune", "nested", "error_score", "train_size"):
        if getattr(args, key) is not None:
            study[key] = getattr(args, key)
    model, data = study.pop("model", "lenet5"), study.pop("data", "digits")
    _check_model_name(model)
    _check_data(data)
    check_settings(**{key: study[key] for key in SETTING_KEYS if key in study})
    name = os.path.splitext(os.path.basename(args.study))[0] if args.study else f"{model}-{data}"
    out = study.pop("out", None) or os.path.join("runs", f"tune-{name}")
    _check_writable(out)
    import kerascnn
    from kerascnn.tuning.search import describe_test_metrics

    result = kerascnn.tune(model, data, out=out, data_dir=args.data_dir, **study)
    if result.nested:
        print(f"nested cross-validation: {json.dumps(result.nested)}")
    else:
        print(f"best hyperparameters: {json.dumps(result.best_hyperparameters)}")
    if result.test_metrics:
        print(f"refit test {describe_test_metrics(result.test_metrics)}")
    print(f"search folder: {out}")


def cmd_finetune(args):
    _check_data(args.data)
    _check_recipe(args.recipe)
    network = args.source.strip().startswith(APPLICATIONS)
    if args.weights is not None and not network:
        raise InputError(f"--weights is for keras.applications sources (e.g. "
                         f"{APPLICATIONS}MobileNetV2); {args.source} brings its own weights.")
    if args.weights not in (None, "imagenet") and not os.path.isfile(args.weights):
        raise InputError(f"--weights {args.weights} is neither imagenet nor an existing "
                         "weights file.")
    import kerascnn
    from kerascnn.evaluation.metrics import headline

    # keras.applications.NAME(...): the folder is named NAME.
    source = args.source.strip()[len(APPLICATIONS):].split("(")[0] if network else \
        os.path.splitext(os.path.basename(str(args.source).rstrip("/")))[0]
    data = os.path.splitext(os.path.basename(str(args.data).rstrip("/")))[0].replace(":", "_")
    # No _check_writable: the run folder is created only once every option has been checked.
    out = args.out or os.path.join("runs", f"finetune-{source}-{data}-seed{args.seed}")
    result = kerascnn.finetune(
        args.source, args.data, weights=args.weights, freeze=args.freeze,
        head_epochs=args.head_epochs, epochs=args.epochs, learning_rate=args.learning_rate,
        lr_mult=args.lr_mult, bn=args.bn, recipe=args.recipe, adapt_input=not args.keep_input,
        renormalize={"auto": "auto", "yes": True, "no": False}[args.renormalize],
        out=out, fresh=args.fresh, seed=args.seed, data_dir=args.data_dir, safe_mode=not args.no_safe_mode,
        precision=args.precision, task=args.task,
    )
    summary = headline(result.metrics)
    print(f"run folder: {result.run_dir}")
    print(f"test metrics: {json.dumps(summary)}")


def parser():
    """The argument parser of the `kerascnn` command."""
    from kerascnn import __version__

    # --verbose / --debug go before or after the command; SUPPRESS keeps a subcommand from
    # resetting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show TensorFlow's native logs")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the logs, and a traceback on errors")

    p = argparse.ArgumentParser(prog="kerascnn", description="The classic CNNs for Keras 3.")
    p.add_argument("--version", action="version", version=f"kerascnn {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's native logs")
    p.add_argument("--debug", action="store_true", help="show the logs, and a traceback on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help):
        return sub.add_parser(name, help=help, parents=[common])

    s = command("list", "list the registered architectures")
    s.add_argument("pattern", nargs="?", help="glob such as 'resnet*'")
    s.set_defaults(func=cmd_list)

    s = command("inspect", "per-layer shapes, neurons, parameters, multiply-adds, memory")
    s.add_argument("model", help="a registry name or a .keras file")
    s.add_argument("--input-shape", type=_input_shape, help="e.g. 28,28,1 (default: the paper's)")
    s.add_argument("--num-classes", type=_positive_int)
    s.add_argument("--batch-size", type=_positive_int, default=1, help="batch size of the memory figures")
    s.add_argument("--optimizer", default="adam", help="optimizer of the training-memory figure")
    s.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    s.add_argument("--plot", metavar="FILE", help="write a PNG of the per-layer figures")
    s.set_defaults(func=cmd_inspect)

    s = command("train", "train a model (default: LeNet-5 on scikit-learn's digits)")
    s.add_argument("--model", default="lenet5", help="a registry name or a .keras file")
    s.add_argument("--data", default="digits", help="digits, mnist, cifar10, tfds:NAME, a .npz, "
                                                    "a folder or a TFRecords spec .json")
    s.add_argument("--data-dir", help="folder holding offline copies such as mnist.npz, "
                                      "cifar10/ or cifar10-jpg.tar.gz (default "
                                      "$KERASCNN_DATA_DIR)")
    s.add_argument("--kind", choices=KINDS, help="how to read arrays: image, signal (N, length, "
                                                 "channels) or volume (default: from the shape)")
    s.add_argument("--stream", action=argparse.BooleanOptionalAction, help="read an image "
                   "folder, TFDS set or TFRecord shards from its files while training instead "
                   "of into memory (default: stream when it would not fit)")
    s.add_argument("--cache", metavar="DIR", help="with --stream: keep the decoded images in DIR "
                                                  "so later epochs and runs skip decoding")
    s.add_argument("--recipe", default="quick", help="quick, mnist_fast, mnist_best, "
                                                     "airbench94, cifar_fast, cifar_best, alexnet, "
                                                     "resnet, resnet_rs (kerascnn recipes --all)")
    s.add_argument("--option", action="append", type=_model_option, metavar="KEY=VALUE",
                   help="a builder option, repeatable, over the recipe's: --option norm=batch "
                        "--option width_multiplier=3 (values read as JSON: 3, 0.5, true, null)")
    s.add_argument("--task", help="classification (default) or regression (float targets, "
                                   "e.g. a .npz whose y arrays are floats)")
    s.add_argument("--loss", help="categorical_crossentropy (default), hinge or squared_hinge "
                                  "(multiclass SVM on raw scores); mse (regression default) or mae")
    s.add_argument("--epochs", type=_positive_int)
    s.add_argument("--batch-size", type=_positive_int)
    s.add_argument("--learning-rate", type=_positive_float)
    s.add_argument("--validation-split", type=_fraction, help="fraction of the training split held "
                   "out when the data has no validation split; 0: none (default: the recipe's)")
    s.add_argument("--augment", help="e.g. 'flip,rotate=5,crop=0.9' or 'none'")
    s.add_argument("--precision", choices=PRECISIONS, help="auto: bfloat16 on CPUs with "
                   "bfloat16 units, float16 on a GPU, else float32 (default: the recipe's)")
    s.add_argument("--out", help="run folder (default runs/MODEL-DATA[-what else is set]-seedSEED); "
                                 "rerun to resume")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--strategy", choices=("mirrored", "multi_worker"))
    s.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    s.set_defaults(func=cmd_train)

    s = command("evaluate", "metrics, plots and a report for a run folder or a saved model")
    s.add_argument("model", help="a run folder (its own test split) or a .keras file")
    s.add_argument("--data", help="as for train; its test split is used (needed for a .keras file)")
    s.add_argument("--data-dir", help="folder of offline data copies (default $KERASCNN_DATA_DIR)")
    s.add_argument("--seed", type=int, help="seed of the data split (default: the run's)")
    s.add_argument("--out", help="folder for metrics.json, report.md, report.html and PNGs")
    s.add_argument("--history", help="a history.csv for learning curves (default: the run's)")
    s.add_argument("--mc-dropout", type=int, default=0, metavar="N", help="Monte-Carlo dropout passes")
    s.add_argument("--tta", choices=("flip", "flip_shift"), help="test-time augmentation: flip "
                   "averages each image's prediction with its left-right mirror's; flip_shift "
                   "also with those of the image shifted by a pixel")
    s.add_argument("--task", help="classification or regression (default: the run's, or read "
                                  "from the model's loss)")
    s.set_defaults(func=cmd_evaluate)

    s = command("data", "data set tools")
    data_sub = s.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    d = data_sub.add_parser("preview", help="write a PNG grid of augmented training examples",
                            parents=[common])
    d.add_argument("--data", default="digits", help="as for train (default digits)")
    d.add_argument("--data-dir", help="folder of offline data copies (default $KERASCNN_DATA_DIR)")
    d.add_argument("--kind", choices=KINDS, help="how to read arrays (default: from the shape)")
    d.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="regression: float targets, each image titled with its value(s)")
    d.add_argument("--augment", default="flip,rotate=5,crop=0.9",
                   help="the augmentations to show (default %(default)s)")
    d.add_argument("--out", default="preview.png", help="the PNG to write (default %(default)s)")
    d.add_argument("-n", type=_positive_int, default=16, help="examples shown (default 16)")
    d.add_argument("--seed", type=int, default=0, help="seed of the examples and augmentations")
    d.set_defaults(func=cmd_preview)

    s = command("recipes", "list the training recipes")
    s.add_argument("-a", "--all", action="store_true", help="print every field, as JSON")
    s.set_defaults(func=cmd_recipes)

    s = command("tune", "search hyperparameters by k-fold cross-validation (KerasTuner)")
    s.add_argument("study", nargs="?", help="a study file such as tuning/lenet5_digits.toml; "
                                            "the flags below override it")
    s.add_argument("--model", help="a registry name (default lenet5)")
    s.add_argument("--data", help="digits, mnist, cifar10, tfds:NAME, a .npz or a folder "
                                  "(default digits)")
    s.add_argument("--data-dir", help="folder of offline data copies (default $KERASCNN_DATA_DIR)")
    s.add_argument("--folds", type=_positive_int, help="k of a k-fold, stratified for classes; "
                                                       "1: one validation split (default 5)")
    s.add_argument("--tuner", help="random (default), grid, bayesian or hyperband")
    s.add_argument("--task", choices=("classification", "regression"),
                   help="regression: float targets, shuffled (not stratified) folds (default: "
                        "the study's, else classification)")
    s.add_argument("--objective", help="val_accuracy or val_loss; for regression val_mse, "
                                       "val_mae or val_r2 (default: accuracy, or the "
                                       "recipe's loss)")
    s.add_argument("--max-trials", type=_positive_int)
    s.add_argument("--epochs", type=_positive_int, help="epochs per fold (Hyperband: the most)")
    s.add_argument("--train-size", type=_positive_int, help="search on this many training "
                   "examples, drawn in proportion to the classes (default: all)")
    s.add_argument("--prune", type=float, help="stop a trial after a fold when its running "
                   "mean trails the best trial's by more than this margin (default: off)")
    s.add_argument("--nested", type=int, help="K outer folds of nested cross-validation "
                                              "(default 0: off)")
    s.add_argument("--error-score", type=_error_score, help="nan (default): a failed trial is "
                   "recorded and the search goes on; raise: a failed trial stops it")
    s.add_argument("--out", help="search folder (default runs/tune-STUDY); rerun to resume")
    s.add_argument("--seed", type=int)
    s.set_defaults(func=cmd_tune)

    s = command("finetune", "fine-tune a trained model on new data: new head, then unfreezing")
    s.add_argument("source", help="a .keras file, a saved_models/ name (e.g. resnet18_mnist), "
                                  "a run folder, or a keras.applications network: "
                                  "keras.applications.MobileNetV2, or with its arguments "
                                  "'keras.applications.MobileNetV2(alpha=0.35)'")
    s.add_argument("--weights", help="a keras.applications source's weights: imagenet (the "
                                     "default; Keras downloads them once) or a weights file")
    s.add_argument("--data", required=True, help="digits, mnist, cifar10, tfds:NAME, a .npz or "
                                                 "a folder")
    s.add_argument("--data-dir", help="folder of offline data copies (default $KERASCNN_DATA_DIR)")
    s.add_argument("--task", choices=("classification", "regression"),
                   help="regression: float targets, a linear head per target, MSE (default "
                        "classification)")
    s.add_argument("--freeze", default="none", help="none (default: head, then everything), "
                   "base (head only), N (the top N stages too), a stage name, gradual, or all "
                   "(features + logistic regression)")
    s.add_argument("--bn", choices=("frozen", "train_affine", "train"), default="frozen",
                   help="BatchNorm: frozen (inference mode), train_affine (gamma/beta learn, "
                        "statistics fixed) or train")
    s.add_argument("--head-epochs", type=_whole_number, help="epochs of the head phase "
                                                             "(default --epochs; 0 skips it)")
    s.add_argument("--epochs", type=_positive_int, help="epochs of each unfreezing phase")
    s.add_argument("--learning-rate", type=_positive_float,
                   help="the head phase's (later phases: × 0.1)")
    s.add_argument("--lr-mult", help="learning-rate multipliers per group: 'low..high', "
                                     "'stem=0,conv5=0.1' or one per group")
    s.add_argument("--recipe", default="quick", help="quick, alexnet, resnet, resnet_rs")
    s.add_argument("--precision", choices=PRECISIONS, help="auto: bfloat16 on CPUs with "
                   "bfloat16 units, float16 on a GPU, else float32 (default: the recipe's)")
    s.add_argument("--renormalize", nargs="?", const="yes", default="auto",
                   choices=("auto", "yes", "no"),
                   help="input normalisation on the new data: auto (re-adapt when the data's "
                        "value range differs from the source's statistics; the default), yes "
                        "(always re-adapt; also a bare --renormalize), no (keep the source's)")
    s.add_argument("--keep-input", action="store_true", help="convert channels in the "
                   "Preprocessing layer instead of adapting the first convolution")
    s.add_argument("--no-safe-mode", action="store_true",
                   help="load Lambda layers (runs code stored in the file: trusted files only)")
    s.add_argument("--out", help="run folder (default runs/finetune-SOURCE-DATA-seedSEED); "
                                 "rerun to resume")
    s.add_argument("--fresh", action="store_true", help="start the fine-tune in --out over "
                   "(deletes only the files kerascnn wrote there)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_finetune)
    return p


def _join_signed_values(argv):
    """Writes `--input-shape -28,28,1` as `--input-shape=-28,28,1` so argparse validates it."""
    argv = list(argv)
    for i in range(len(argv) - 2, -1, -1):
        if argv[i] in _SIGNED_VALUE_OPTIONS and re.match(r"-[\d.]", argv[i + 1]):
            argv[i:i + 2] = [f"{argv[i]}={argv[i + 1]}"]
    return argv


@contextlib.contextmanager
def _without_native_logs():
    """Drops TensorFlow's native log lines from file descriptor 2; passes every other line.

    Only when `sys.stderr` writes to descriptor 2 (a terminal or a file, not a test capture).
    """
    try:
        redirect = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        redirect = False
    if not redirect:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    passed = os.dup(2)  # the pump's own copy: `saved` may be closed before the pump starts
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    jpeg_warnings = []

    def pump():
        with os.fdopen(read, "rb") as pipe, os.fdopen(passed, "wb", buffering=0) as out:
            for line in pipe:
                if _LIBJPEG_WARNING.match(line):
                    jpeg_warnings.append(line)
                elif not _NATIVE_LOG.match(line):
                    out.write(line)

    thread = threading.Thread(target=pump, name="kerascnn-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump sees its end
        os.close(saved)
        thread.join(timeout=5)
        if jpeg_warnings:
            sys.stderr.write(
                f"kerascnn: libjpeg reported recoverable JPEG damage {len(jpeg_warnings)} "
                f"time(s) (first: {jpeg_warnings[0].decode(errors='replace').strip()!r}); the "
                "images were used as decoded. --verbose shows every message.\n")


def _one_line(error, args):
    """Returns the one-line message for a user-facing error, or None for a bug."""
    files = [getattr(args, key) for key in ("model", "source", "data") if getattr(args, key, None)]
    if isinstance(error, json.JSONDecodeError):
        folder = getattr(args, "out", None) or "the run folder"
        return (f"a JSON file of {folder} is damaged ({error}); rerun with --fresh to start "
                "the run over")
    if isinstance(error, (InputError, FileNotFoundError)):
        return str(error)
    name = type(error).__name__
    if isinstance(error, MemoryError) or name == "ResourceExhaustedError":
        sizes = ", ".join(
            f"--{key.replace('_', '-')} {','.join(map(str, value)) if isinstance(value, tuple) else value}"
            for key, value in vars(args).items() if key in ("input_shape", "batch_size") and value)
        return (f"out of memory{f' with {sizes}' if sizes else ''} "
                f"({type(error).__name__}): use a smaller input shape, batch size or model")
    if isinstance(error, (zipfile.BadZipFile, EOFError)):
        return (f"a damaged or truncated file among {', '.join(files)} ({type(error).__name__}: "
                f"{error}); write it again")
    if name == "PermissionDeniedError":  # TensorFlow's, for files it writes itself
        text = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", getattr(error, "message", str(error)))
        return f"cannot write {text.strip()}; choose a writable --out folder"
    if isinstance(error, OSError):
        where = error.filename or getattr(args, "out", None) or "a file"
        fix = {
            errno.ENOSPC: "free some disk space or choose --out on another disk",
            errno.EDQUOT: "free some disk space or choose --out on another disk",
            errno.EROFS: "choose a writable --out folder",
            errno.EACCES: "choose a folder you may write to with --out",
            errno.EPERM: "choose a folder you may write to with --out",
        }.get(error.errno, "check the path and its permissions")
        return f"cannot use {where}: {error.strerror or error}; {fix}"
    return None


def main(argv=None):
    """Entry point of the `kerascnn` console script."""
    p = parser()
    args = p.parse_args(_join_signed_values(sys.argv[1:] if argv is None else argv))
    show_logs = args.verbose or args.debug
    if not show_logs:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet = contextlib.nullcontext() if show_logs else _without_native_logs()
    try:
        with quiet:
            args.func(args)
    except KeyboardInterrupt:
        p.exit(130, "interrupted; rerun the same command to resume\n")
    except Exception as error:
        message = _one_line(error, args)
        command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))
        if args.debug:
            raise
        if message is None:  # not the user's mistake: a bug, reported as one
            p.exit(1, f"kerascnn {command}: internal error ({type(error).__name__}: "
                      f"{' '.join(str(error).split())[:300]}). This is a bug in kerascnn, not in "
                      "your input: rerun with --debug for the traceback and report it.\n")
        p.exit(2, f"kerascnn {command}: error: {' '.join(message.split())}\n")


if __name__ == "__main__":
    main()
