"""The `kerascnn` command: each subcommand end to end, and user mistakes as clean errors."""

import contextlib
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kerascnn
from kerascnn.cli import _default_out, main, parser
from kerascnn.errors import InputError


def _fails(argv, capsys):
    """Runs the command, expecting a user error; returns its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _run(*argv, **kwargs):
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300,
                          **kwargs)


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory):
    """A 1-epoch run of lenet5 on 1D signals (N, 40, 1) in a .npz, with the CLI's stdout."""
    folder = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = (rng.normal(size=(90, 40, 1)) + y[:, None, None]).astype(np.float32)
    np.savez(folder / "signals.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    argv = ["train", "--data", str(folder / "signals.npz"), "--epochs", "1", "--out", str(folder / "run")]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        main(argv)
    return folder, stdout.getvalue()


def test_list_prints_every_model_with_its_paper(capsys):
    main(["list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == kerascnn.list_models()
    googlenet = next(line for line in lines if line.startswith("googlenet "))
    names = kerascnn.build_model("googlenet", input_shape=(64, 64, 3), num_classes=2,
                                 width_multiplier=0.1).output_names
    assert f"[outputs: {', '.join(names)} " in googlenet  # main + 2 auxiliary heads
    main(["list", "vgg*"])
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_the_catalog_list_reads_is_the_registry():
    from kerascnn.models import registry

    with open(registry.CATALOG_PATH, encoding="utf-8") as f:
        assert list(json.load(f).items()) == list(registry.catalog().items()), (
            "kerascnn/models/catalog.json is out of date: python -c \"import kerascnn.models as m; "
            "m.registry.write_catalog()\"")


def test_inspect_json_matches_the_model(capsys, tmp_path):
    plot = tmp_path / "lenet5.png"
    main(["inspect", "lenet5", "--input-shape", "28,28,1", "--num-classes", "10", "--format", "json",
          "--plot", str(plot)])
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 61_706
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipes_lists_the_named_recipes(capsys):
    main(["recipes", "--all"])
    recipes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in recipes} == set(kerascnn.training.RECIPES)
    # `kerascnn train --help` names them without importing TensorFlow: it must name them all.
    train = next(a for a in parser()._subparsers._group_actions[0].choices["train"]._actions
                 if "--recipe" in a.option_strings)
    assert set(re.findall(r"\w+", train.help.split("(")[0])) == set(kerascnn.training.RECIPES)


def test_data_preview_writes_a_png(tmp_path, capsys):
    out = tmp_path / "preview.png"
    main(["data", "preview", "--data", "digits", "--augment", "rotate=10,crop=0.9", "--out", str(out), "-n", "8"])
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "data: digits, read as images of shape 8×8×1" in capsys.readouterr().out


def test_lazy_package_keeps_every_public_name():
    for name in ("train", "evaluate", "build_model", "list_models", "inspect", "conv_output_size",
                 "receptive_field", "reference", "to_fully_convolutional", "data", "models",
                 "training", "layers", "analysis", "evaluation"):
        assert name in dir(kerascnn) and getattr(kerascnn, name) is not None
    assert {"tune", "finetune", "extract_features"} <= set(kerascnn.__all__)
    assert kerascnn.train is kerascnn.workflow.train
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        kerascnn.trian


def test_help_list_and_argument_mistakes_answer_without_tensorflow():
    """`--help`, `list` and argparse errors import neither TensorFlow nor Keras (-X importtime
    lists imports)."""
    shown = _run("-X", "importtime", "-m", "kerascnn", "--help")
    assert shown.returncode == 0 and "train" in shown.stdout
    wrong = _run("-X", "importtime", "-m", "kerascnn", "inspect", "lenet5", "--input-shape", "-28,28,1")
    assert wrong.returncode == 2
    assert "argument --input-shape: expected 2 to 4 positive sizes" in wrong.stderr
    assert "expected one argument" not in wrong.stderr
    listed = _run("-X", "importtime", "-m", "kerascnn", "list", "resnet1?")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["resnet18"]
    for result in (shown, wrong, listed):
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "kerascnn.cli" in imported and not {"tensorflow", "keras"} & imported
    # `list` can end before the thread that filters its stderr runs (made late here): it still
    # says nothing on stderr.
    late = _run("-c", "import threading, time; run = threading.Thread.run; "
                "threading.Thread.run = lambda self: (time.sleep(0.5), run(self)); "
                "from kerascnn.cli import main; main(['list', 'vgg*'])")
    assert late.returncode == 0 and late.stderr == "" and "vgg19" in late.stdout


def test_a_tensorflow_command_fails_in_one_line_without_native_logs(tmp_path):
    """A real process: the error is one line, and TensorFlow's start-up logs are dropped."""
    (tmp_path / "empty.npz").write_bytes(b"")
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = _run("-m", "kerascnn", "train", "--data", str(tmp_path / "empty.npz"),
                  "--out", str(tmp_path / "run"), env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"kerascnn train: error: {tmp_path / 'empty.npz'} cannot be read as a .npz archive "
        "(EOFError: No data left in file): the file is empty, truncated or damaged. Write it "
        "again with np.savez."
    ]


def test_debug_shows_the_original_exception(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot be read as a .npz archive"):
        main(["data", "preview", "--data", str(tmp_path / "empty.npz"), "--debug",
              "--out", str(tmp_path / "p.png")])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["inspect", "resnet17"], "unknown model 'resnet17'"),
        (["train", "--model", "lenet5", "--data", "no_such_set", "--epochs", "1"], "no_such_set"),
        (["train", "--recipe", "fast"], "unknown recipe 'fast'"),
        (["train", "--epochs", "0"], "--epochs: expected a positive whole number; got '0'"),
        (["inspect", "lenet5", "--input-shape", "28,x,1"], "expected sizes like 28,28,1"),
        (["inspect", "lenet5", "--input-shape", "28,0,1"], "positive sizes"),
        (["evaluate", "no/such/model.keras", "--data", "digits"], "no such model file"),
    ],
)
def test_mistakes_exit_2_with_a_message_and_no_traceback(argv, message, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run")]
    assert message in _fails(argv, capsys)


def _bad_npz(tmp_path, name):
    x, y = np.zeros((8, 4, 4), np.uint8), np.arange(8) % 2
    path = tmp_path / f"{name}.npz"
    if name == "empty":
        path.write_bytes(b"")
    elif name == "truncated":
        np.savez(path, x_train=x, y_train=y)
        path.write_bytes(path.read_bytes()[:200])
    elif name == "npy":
        np.save(tmp_path / "array.npy", x)
        os.replace(tmp_path / "array.npy", path)
    elif name == "strings":
        np.savez(path, x_train=x.astype(str), y_train=y)
    elif name == "one_per_class":
        np.savez(path, x_train=x[:2], y_train=y[:2])
    return path


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty", r"empty\.npz cannot be read as a \.npz archive \(EOFError"),
        ("truncated", r"truncated\.npz cannot be read as a \.npz archive \(BadZipFile"),
        ("npy", r"npy\.npz holds a single array \(a \.npy file named \.npz\)"),
        ("strings", r"strings\.npz: x_train holds strings"),
        ("one_per_class", r"one_per_class\.npz: test_split=0\.2 holds out nothing"),
    ],
)
def test_bad_data_files_are_named_in_one_line(name, message, tmp_path, capsys):
    path = _bad_npz(tmp_path, name)
    err = _fails(["data", "preview", "--data", str(path), "--out", str(tmp_path / "p.png")], capsys)
    assert len(err.splitlines()) == 1
    assert err.startswith("kerascnn data preview: error: ")
    assert re.search(message, err), err


@pytest.fixture(scope="module")
def damaged_models(tmp_path_factory):
    """A flipped byte in the weights, a truncated archive, and a .keras that is plain text."""
    folder = tmp_path_factory.mktemp("models")
    kerascnn.build_model("lenet1", input_shape=(28, 28, 1), num_classes=10).save(folder / "good.keras")
    content = bytearray((folder / "good.keras").read_bytes())
    flipped = bytearray(content)
    flipped[len(flipped) // 2] ^= 0xFF
    (folder / "flipped.keras").write_bytes(flipped)
    (folder / "truncated.keras").write_bytes(content[:1000])
    (folder / "text.keras").write_text("not a model")
    return folder


@pytest.mark.parametrize(
    "name, message",
    [
        ("flipped", r"flipped\.keras is damaged: its member .* fails its checksum"),
        ("truncated", r"truncated\.keras is not a readable \.keras file .*Save the model again"),
        ("text", r"text\.keras is not a readable \.keras file"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "evaluate"])
def test_damaged_model_files_are_named_not_reported_missing(damaged_models, name, message, command,
                                                           capsys):
    argv = [command, str(damaged_models / f"{name}.keras")]
    err = _fails(argv + (["--data", "digits"] if command == "evaluate" else []), capsys)
    assert re.search(message, err) and "not found" not in err.lower(), err


def test_unwritable_output_is_named_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    err = _fails(["train", "--epochs", "1", "--out", str(blocker / "run")], capsys)
    assert f"--out {blocker / 'run'} is not writable" in err
    err = _fails(["data", "preview", "--out", str(blocker / "p.png")], capsys)
    assert "the folder of --out" in err and "is not writable" in err


@pytest.mark.parametrize(
    "code, fix",
    [(errno.ENOSPC, "free some disk space"), (errno.EROFS, "choose a writable --out folder")],
)
def test_a_full_or_read_only_disk_mid_run_ends_in_one_line(code, fix, tmp_path, capsys, monkeypatch):
    """The disk fills (or turns read-only) while the PNG is written."""

    def write_fails(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path / "p.png"))

    monkeypatch.setattr(kerascnn.data, "preview", write_fails)
    err = _fails(["data", "preview", "--out", str(tmp_path / "p.png")], capsys)
    assert f"cannot use {tmp_path / 'p.png'}: {os.strerror(code)}; {fix}" in err


def test_a_bug_is_said_to_be_one_not_blamed_on_the_input(tmp_path, capsys, monkeypatch):
    """A TypeError kerascnn did not raise for bad input: exit 1, named as a bug, no traceback
    unless --debug; a kerascnn InputError stays the user's one-line mistake (exit 2)."""

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    monkeypatch.setattr(kerascnn.data, "preview", broken)
    argv = ["data", "preview", "--out", str(tmp_path / "p.png")]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert "internal error (TypeError: unsupported operand" in err and "bug in kerascnn" in err
    with pytest.raises(TypeError, match="unsupported operand"):
        main([*argv, "--debug"])

    def mistake(*args, **kwargs):
        raise InputError("n=0 must be positive")

    monkeypatch.setattr(kerascnn.data, "preview", mistake)
    assert "kerascnn data preview: error: n=0 must be positive" in _fails(argv, capsys)


@pytest.mark.slow
def test_out_of_memory_names_the_option():
    """A 100000×100000 input under a 6 GB address-space limit: one line, no traceback.

    Slow: TensorFlow's allocator retries for about ten seconds before it gives up.
    """
    script = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
              "from kerascnn.cli import main; main()")
    result = _run("-c", script, "inspect", "lenet5", "--input-shape", "100000,100000,1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: out of memory with --input-shape 100000,100000,1" in result.stderr
    assert "Traceback" not in result.stderr


def test_signals_with_a_channel_axis_train_a_1d_network_and_say_so(signal_run):
    folder, stdout = signal_run
    assert "examples read as signals of shape 40×1" in stdout
    run = json.loads((folder / "run" / "run.json").read_text())
    assert len(run["network_input_shape"]) == 2  # (length, channels): Conv1D, not a 2D image


def test_kind_reaches_the_loader_before_any_training(signal_run, tmp_path, capsys):
    folder, _ = signal_run
    err = _fails(["train", "--data", str(folder / "signals.npz"), "--kind", "volume",
                  "--out", str(tmp_path / "run")], capsys)
    assert "kind='volume' needs an array of rank 4 or 5" in err


def test_evaluate_a_model_file_finds_the_history_and_says_where_the_report_went(
        signal_run, tmp_path, capsys):
    folder, _ = signal_run
    model, data = str(folder / "run" / "model.keras"), str(folder / "signals.npz")
    main(["evaluate", model, "--data", data])
    out = capsys.readouterr().out
    assert f"learning curves from {folder / 'run' / 'history.csv'}" in out
    assert "nothing written: pass --out FOLDER" in out
    main(["evaluate", model, "--data", data, "--out", str(tmp_path / "eval")])
    assert f"report written to {tmp_path / 'eval' / 'report.md'}" in capsys.readouterr().out
    assert (tmp_path / "eval" / "learning_curves.png").exists()
    err = _fails(["evaluate", model], capsys)
    assert "a model file needs --data" in err and str(folder / "run") in err


def test_evaluate_a_run_folder_needs_no_data(signal_run, capsys):
    folder, _ = signal_run
    main(["evaluate", str(folder / "run")])
    out = capsys.readouterr().out
    assert "accuracy" in out and "nothing written" in out
    assert f"learning curves from {folder / 'run' / 'history.csv'}" in out
    err = _fails(["evaluate", str(folder / "run"), "--seed", "1"], capsys)
    assert "split its data with seed 0" in err


def test_readme_commands_get_their_own_default_run_folders():
    p = parser()
    offline = p.parse_args(["train", "--model", "lenet5", "--data", "mnist", "--epochs", "3"])
    tour = p.parse_args(["train", "--model", "lenet5", "--data", "mnist", "--epochs", "5",
                         "--augment", "rotate=5,crop=0.9"])
    default = p.parse_args(["train"])
    assert _default_out(default) == os.path.join("runs", "lenet5-digits-seed0")
    assert _default_out(offline) == os.path.join("runs", "lenet5-mnist-e3-seed0")
    assert _default_out(tour) == os.path.join("runs", "lenet5-mnist-e5-aug-rotate5_crop0.9-seed0")


def test_keras_loads_a_saved_model_once_kerascnn_is_imported():
    """README's promise: `import keras; import kerascnn` is enough for keras.models.load_model."""
    model = os.path.join(os.path.dirname(__file__), "..", "kerascnn", "saved_models",
                         "lenet5_mnist.keras")
    script = ("import sys, keras, kerascnn; model = keras.models.load_model(sys.argv[1]); "
              "print(sorted({type(layer).__module__.split('.')[0] for layer in model.layers}))")
    result = _run("-c", script, model)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kerascnn" in result.stdout  # the model holds kerascnn's own layers


def test_a_damaged_run_state_is_named_with_the_fix(signal_run, tmp_path, capsys):
    folder, _ = signal_run
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    (run / "checkpoints" / "state.json").write_text('{"epoch": 1, "mod')
    err = _fails(["train", "--data", str(folder / "signals.npz"), "--epochs", "2", "--out", str(run)],
                 capsys)
    assert str(run / "checkpoints" / "state.json") in err and "--fresh" in err


def test_option_reads_builder_options_as_json_literals_and_names_the_run_folder():
    args = parser().parse_args(["train", "--model", "lenet5", "--data", "mnist", "--recipe",
                                "mnist_best", "--option", "norm=batch", "--option",
                                "width_multiplier=1.5", "--option", "first_padding=null",
                                "--option", "activation=leaky_relu:0.1"])
    assert dict(args.option) == {"norm": "batch", "width_multiplier": 1.5, "first_padding": None,
                                 "activation": "leaky_relu:0.1"}
    assert _default_out(args) == os.path.join(
        "runs", "lenet5-mnist-mnist_best-activation_leaky_relu_0.1-first_padding_None-"
                "norm_batch-width_multiplier1.5-seed0")
    readme = parser().parse_args(["train", "--model", "lenet5", "--data", "mnist", "--recipe",
                                  "mnist_best"])
    assert _default_out(readme) == os.path.join("runs", "lenet5-mnist-mnist_best-seed0")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--option", "norm"], "expected a builder option as KEY=VALUE, like norm=batch"),
        (["--option", "=3"], "got '=3'"),
        (["--option", "widht=2"], "lenet5 has no option widht; its options: ["),
        (["--option", "norm=batch", "--option", "norm=none"], "--option norm is given twice"),
        (["--model", "resnet18", "--recipe", "mnist_fast"],
         "recipe 'mnist_fast' sets the model option(s) filters, first_padding, hidden_units, "
         "kernel_size, pool_kind, which resnet18 does not take"),
    ],
)
def test_option_mistakes_end_in_one_line_before_any_data_is_read(argv, message, capsys, tmp_path):
    # The data cannot be read: the option is refused before it would be.
    (tmp_path / "empty.npz").write_bytes(b"")
    err = _fails(["train", "--data", str(tmp_path / "empty.npz"), *argv, "--out",
                  str(tmp_path / "run")], capsys)
    assert message in err.strip().splitlines()[-1]


def test_option_reaches_the_built_model_over_the_recipes(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--epochs", "1", "--option", "norm=batch", "--option", "width_multiplier=2",
          "--out", str(out)])
    record = json.loads((out / "run.json").read_text())
    assert record["model_options"] == {"norm": "batch", "width_multiplier": 2}
    import keras

    model = keras.models.load_model(out / "model.keras")
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert [layer.filters for layer in backbone.layers
            if isinstance(layer, keras.layers.Conv2D)] == [12, 32]
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in backbone.layers)


def test_the_names_the_command_line_checks_agree_with_the_library():
    from kerascnn import cli
    from kerascnn.data.sources import KERAS_DATASETS
    from kerascnn.tuning.cross_validation import TUNERS
    from kerascnn.tuning.study import TUNER_NAMES

    assert set(cli.NAMED_DATA) == {"digits", *KERAS_DATASETS}
    assert set(TUNER_NAMES) == set(TUNERS)


QUICK_MISTAKES = [
    (["recipes"], 0, "mnist_fast"),
    (["inspect", "nosuch"], 2, "unknown model 'nosuch'"),
    (["train", "--model", "lenet55"], 2, "Did you mean lenet5"),
    (["train", "--data", "digitz"], 2, "Did you mean digits"),
    (["train", "--recipe", "quik"], 2, "Did you mean quick"),
    (["train", "--epochs", "-1"], 2, "expected a positive whole number; got '-1'"),
    (["train", "--learning-rate", "nan"], 2, "expected a positive number"),
    (["train", "--learning-rate", "0"], 2, "expected a positive number; got '0'"),
    (["train", "--validation-split", "1.5"], 2, "expected a fraction"),
    (["tune", "--tuner", "banana"], 2, "Unknown tuner 'banana'"),
    (["tune", "--prune", "-0.1"], 2, "prune must be None (off) or a margin >= 0"),
    (["tune", "--nested", "1"], 2, "got nested=1"),
    (["finetune", "resnet18_mnist", "--data", "digitz"], 2, "Did you mean digits"),
]


@pytest.mark.parametrize("argv, status, expected", QUICK_MISTAKES,
                         ids=[" ".join(a) for a, _, _ in QUICK_MISTAKES])
def test_quick_answers_and_name_mistakes_import_no_tensorflow(argv, status, expected, tmp_path):
    # Issue 24, item 20: these took 10-33 s on a busy machine, importing TensorFlow first.
    script = ("import sys\nfrom kerascnn.cli import main\n"
              "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code or 0\n"
              "else:\n    code = 0\n"
              "print('TF' if 'tensorflow' in sys.modules else 'no TF', file=sys.stderr)\n"
              "sys.exit(code)\n")
    done = _run("-c", script, *argv, "--out", str(tmp_path / "out"), cwd=tmp_path) \
        if argv[0] in ("train", "finetune") else _run("-c", script, *argv, cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert expected in done.stdout + done.stderr
    assert done.stderr.rstrip().endswith("no TF")
    assert os.listdir(tmp_path) == []  # nothing written, no --out folder made


@pytest.mark.parametrize("argv", [["train", "--data", "digitz"], ["tune", "--data", "digitz"]])
def test_a_refused_command_leaves_no_out_folder(argv, tmp_path, capsys):
    # Issue 24, item 11: refused commands left empty or skeleton --out folders behind.
    out = tmp_path / "runs" / "x"
    _fails([*argv, "--out", str(out)], capsys)
    assert not (tmp_path / "runs").exists()


def test_out_that_is_a_file_or_the_root_is_refused_at_once(tmp_path, capsys):
    victim = tmp_path / "notes.txt"
    victim.write_text("mine")
    assert "is a file, not a folder" in _fails(["train", "--out", str(victim)], capsys)
    assert victim.read_text() == "mine"
    err = _fails(["train", "--epochs", "1", "--out", "/"], capsys)
    assert "holds files kerascnn did not write" in err and "more" in err


def test_train_and_evaluate_explain_a_lambda_layer_instead_of_keras_advice(tmp_path, capsys):
    # Issue 24, item 14: Keras' advice (pass safe_mode=False) named an option they lack.
    import keras

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs)))
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    for argv in (["train", "--model", path], ["evaluate", path, "--data", "digits"]):
        err = _fails([*argv, "--out", str(tmp_path / "out")], capsys)
        assert "holds a Lambda layer" in err and "safe_mode=False" in err
        assert f"kerascnn.{argv[0]}(" in err
    assert not (tmp_path / "out").exists()


def test_libjpeg_warnings_are_summarised_in_one_line():
    # Issue 24, item 22: TensorFlow's libjpeg wrote one line per damaged JPEG at every decode.
    script = ("import os\nfrom kerascnn.cli import _without_native_logs\n"
              "with _without_native_logs():\n"
              "    for _ in range(3):\n"
              "        os.write(2, b'Corrupt JPEG data: 2 extraneous bytes before marker 0xd9\\n')\n"
              "    os.write(2, b'a line of the user\\n')\n")
    err = _run("-c", script).stderr.splitlines()
    assert err[0] == "a line of the user"
    assert len(err) == 2 and "recoverable JPEG damage 3 time(s)" in err[1]
    assert "Corrupt JPEG data: 2 extraneous bytes" in err[1]
