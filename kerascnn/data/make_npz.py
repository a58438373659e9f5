"""Writes an image folder, its tar archive or any `load` source as a keras-layout `.npz`.

    python -m kerascnn.data.make_npz SOURCE OUT.npz [--data-dir DIR]

For example `python -m kerascnn.data.make_npz PATH/cifar10 DIR/cifar10.npz` (or
`PATH/cifar10-jpg.tar.gz`), after which `load("cifar10", data_dir=DIR)` reads the `.npz`.
See `kerascnn.data.to_npz`.
"""

import argparse
import sys

from kerascnn.data.npz import to_npz


def main(argv=None):
    """Parses the command line, writes the file and says what it holds."""
    parser = argparse.ArgumentParser(
        prog="python -m kerascnn.data.make_npz",
        description="Write a data set (image folder, .tar.gz of one, .npz, name) as one .npz "
                    "file in keras.datasets layout (x_train, y_train, x_test, y_test, "
                    "class_names), atomically; an existing file is overwritten only if "
                    "this command wrote it.")
    parser.add_argument("source", help="an image folder (train/<class>/, test/<class>/), its "
                        ".tar.gz, or any kerascnn.data.load source")
    parser.add_argument("out", help="the .npz file to write, e.g. DIR/cifar10.npz")
    parser.add_argument("--data-dir", help="folder of offline copies, for a source given by name")
    args = parser.parse_args(argv)
    try:
        data = to_npz(args.source, args.out, data_dir=args.data_dir)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sizes = ", ".join(f"{split} {data.size(split)}" for split in data.split_names)
    print(f"wrote {args.out}: {sizes} examples of {data.input_shape} {data.dtype}, classes "
          f"{', '.join(data.class_names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
