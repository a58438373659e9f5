"""The `kerascnn` command: argument parsing only; every command calls the public API."""

import argparse
import json
import os
import sys


def _shape(text):
    try:
        return tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 28,28,1; got {text!r}") from None


def _default_out(args):
    data = os.path.splitext(os.path.basename(str(args.data).rstrip("/")))[0].replace(":", "_")
    return os.path.join("runs", f"{args.model}-{data}-seed{args.seed}")


def cmd_list(args):
    import kerascnn

    for name in kerascnn.list_models(args.pattern):
        entry = kerascnn.models.get_model_entry(name)
        shape = "×".join(map(str, entry.default_input_shape))
        print(f"{name:18s} {shape:12s} {entry.paper}")


def _model_for(args):
    import keras

    import kerascnn

    if args.model.endswith(".keras"):
        return keras.models.load_model(args.model)
    return kerascnn.build_model(args.model, input_shape=args.input_shape, num_classes=args.num_classes)


def cmd_inspect(args):
    import kerascnn

    report = kerascnn.inspect(_model_for(args), batch_size=args.batch_size,
                              input_shape=args.input_shape, optimizer=args.optimizer)
    print({"text": report.to_text, "markdown": report.to_markdown, "json": report.to_json}[args.format]())
    if args.plot:
        report.plot(args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)


def cmd_train(args):
    import kerascnn

    result = kerascnn.train(
        args.model, args.data, recipe=args.recipe, epochs=args.epochs,
        batch_size=args.batch_size, augment=args.augment, out=args.out or _default_out(args),
        seed=args.seed, strategy=args.strategy, learning_rate=args.learning_rate,
        data_dir=args.data_dir, resume=not args.fresh,
    )
    summary = {k: result.metrics[k] for k in ("accuracy", "macro_f1") if k in result.metrics}
    print(f"run folder: {result.run_dir}")
    print(f"test metrics: {json.dumps(summary)}")


def cmd_evaluate(args):
    import kerascnn

    report = kerascnn.evaluate(args.model, args.data, history=args.history,
                               mc_dropout=args.mc_dropout, out=args.out)
    print(report.summary())


def cmd_preview(args):
    from kerascnn import data

    loaded = data.load(args.data, data_dir=args.data_dir)
    data.preview(loaded, args.augment, args.out, n=args.n, seed=args.seed)
    print(f"preview written to {args.out}")


def cmd_recipes(args):
    from kerascnn.training import RECIPES

    for name, recipe in RECIPES.items():
        print(json.dumps(recipe.to_dict()) if args.verbose else name)


def parser():
    """The argument parser of the `kerascnn` command."""
    from kerascnn import __version__

    p = argparse.ArgumentParser(prog="kerascnn", description="The classic CNNs for Keras 3.")
    p.add_argument("--version", action="version", version=f"kerascnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="list the registered architectures")
    s.add_argument("pattern", nargs="?", help="glob such as 'resnet*'")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("inspect", help="per-layer shapes, neurons, parameters, multiply-adds, memory")
    s.add_argument("model", help="a registry name or a .keras file")
    s.add_argument("--input-shape", type=_shape, help="e.g. 28,28,1 (default: the paper's)")
    s.add_argument("--num-classes", type=int)
    s.add_argument("--batch-size", type=int, default=1, help="batch size of the memory figures")
    s.add_argument("--optimizer", default="adam", help="optimizer of the training-memory figure")
    s.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    s.add_argument("--plot", metavar="FILE", help="write a PNG of the per-layer figures")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("train", help="train a model (default: LeNet-5 on scikit-learn's digits)")
    s.add_argument("--model", default="lenet5", help="a registry name or a .keras file")
    s.add_argument("--data", default="digits", help="digits, mnist, cifar10, tfds:NAME, a .npz or a folder")
    s.add_argument("--data-dir", help="folder of offline data copies (default $KERASCNN_DATA_DIR)")
    s.add_argument("--recipe", default="quick", help="quick, alexnet, resnet, resnet_rs")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--learning-rate", type=float)
    s.add_argument("--augment", help="e.g. 'flip,rotate=5,crop=0.9' or 'none'")
    s.add_argument("--out", help="run folder (default runs/MODEL-DATA-seedSEED); rerun to resume")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--strategy", choices=("mirrored", "multi_worker"))
    s.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="metrics, plots and a report for a saved model")
    s.add_argument("model", help="a .keras file")
    s.add_argument("--data", required=True, help="as for train; its test split is used")
    s.add_argument("--out", help="folder for metrics.json, report.md, report.html and PNGs")
    s.add_argument("--history", help="a history.csv for learning curves")
    s.add_argument("--mc-dropout", type=int, default=0, metavar="N", help="Monte-Carlo dropout passes")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("data", help="data set tools")
    data_sub = s.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    d = data_sub.add_parser("preview", help="write a PNG grid of augmented training examples")
    d.add_argument("--data", default="digits")
    d.add_argument("--data-dir")
    d.add_argument("--augment", default="flip,rotate=5,crop=0.9")
    d.add_argument("--out", default="preview.png")
    d.add_argument("-n", type=int, default=16)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_preview)

    s = sub.add_parser("recipes", help="list the training recipes")
    s.add_argument("-v", "--verbose", action="store_true", help="print every field")
    s.set_defaults(func=cmd_recipes)
    return p


def main(argv=None):
    """Entry point of the `kerascnn` console script."""
    p = parser()
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        p.exit(2, f"kerascnn {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        p.exit(130, "interrupted; rerun the same command to resume\n")


if __name__ == "__main__":
    main()
