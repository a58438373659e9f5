"""Streaming TFRecord shards: kerascnn's read-by-position pipeline against plain tf.data.

On generated shards of 64x64 JPEG `tf.train.Example`s (written under --root, never in the
repository), in one run on the same machine, images/s of one epoch of:
1. kerascnn: `load(TFRecords(...), stream=True).pipeline("train", 64)` — shuffled positions,
   each batch read by `os.pread` through the offset index in one Python call, parsed and
   decoded in graph ops, cast to float32 with one-hot labels;
2. the same pool read one record per Python call (`reads_batches` off), the design not
   chosen;
3. the peer: `tf.data.TFRecordDataset(files).map(parse + decode, AUTOTUNE).batch(64)`,
   sequential (no shuffle), the same JPEG decoder, cast to float32 with one-hot labels.
Prints each figure and the ratio kerascnn / peer (goal >= 1.0x; the peer reads in file order
and cannot shuffle beyond a buffer, kerascnn shuffles every epoch fully).

Usage: PYTHONPATH=. python benchmarks/bench_records.py [--images 5000] [--shards 8]
       [--root /tmp/records/bench] [--rounds 4]
"""

import argparse
import io
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

SIZE = 64
CLASSES = 10
DISTINCT = 200  # distinct JPEGs, written over and over: generation takes seconds
BATCH_SIZE = 64


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000, help="examples in the shards")
    parser.add_argument("--shards", type=int, default=8, help="TFRecord files")
    parser.add_argument("--root", default="/tmp/records/bench", help="where shards go")
    parser.add_argument("--rounds", type=int, default=4, help="timed epochs per side (best)")
    return parser.parse_args()


def make_shards(root, images, shards):
    """Writes `images` 64x64 JPEG examples into `shards` files (kept if already complete)."""
    import tensorflow as tf
    from PIL import Image

    marker = os.path.join(root, f".complete-{images}-{shards}")
    pattern = os.path.join(root, "train-*.tfrecord")
    if os.path.isfile(marker):
        return pattern
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(root):
        os.remove(os.path.join(root, name))
    rng = np.random.default_rng(0)
    encoded = []
    for _ in range(DISTINCT):
        pixels = rng.integers(0, 255, (SIZE // 4, SIZE // 4, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((SIZE, SIZE)).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    for shard, part in enumerate(np.array_split(np.arange(images), shards)):
        path = os.path.join(root, f"train-{shard:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for i in part:
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[encoded[i % DISTINCT]])),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(i % CLASSES)])),
                })).SerializeToString())
    open(marker, "w").close()
    return pattern


def images_per_second(makers, images, rounds):
    """Best images/s of each dataset maker over `rounds` full passes, taken in turns (so a
    busy machine slows every side alike), a fresh iterator each."""
    best = [0.0] * len(makers)
    for _ in range(rounds):
        for side, make_dataset in enumerate(makers):
            start, seen = time.perf_counter(), 0
            for x, _ in make_dataset():
                seen += int(x.shape[0])
            assert seen == images, (seen, images)
            best[side] = max(best[side], seen / (time.perf_counter() - start))
    return best


def peer(files):
    """The plain tf.data reading of the same shards, with the same decoder and outputs."""
    import tensorflow as tf

    from kerascnn.data.pools import JPEG_DCT

    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_jpeg(example["image/encoded"], channels=3, dct_method=JPEG_DCT)
        image = tf.ensure_shape(image, (SIZE, SIZE, 3))
        return (tf.cast(image, tf.float32),
                tf.one_hot(example["image/class/label"], CLASSES, dtype=tf.float32))

    return (tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE))


def main():
    args = parse_args()
    import tensorflow as tf

    from kerascnn.data import TFRecords, load, pipeline

    pattern = make_shards(args.root, args.images, args.shards)
    files = sorted(tf.io.gfile.glob(pattern))
    start = time.perf_counter()
    data = load(TFRecords(train=pattern), stream=True, test_split=None)
    indexed = time.perf_counter() - start
    pool = data._split("train").pool
    print(f"{args.images} JPEGs {SIZE}x{SIZE} in {len(files)} shards; load (one decoding "
          f"scan for labels, sizes and damaged images, then the offset index) {indexed:.2f} s")

    read_batch = pool.reader()

    def one_by_one():
        def read(index):
            return read_batch(index[None])[0]  # one Python call per record

        _, labels = pool.tensors()
        return pipeline.batches(read, labels, np.arange(args.images), CLASSES, BATCH_SIZE,
                                shuffle=True, seed=0, augment=None)

    batched, single, plain = images_per_second(
        [lambda: data.pipeline("train", BATCH_SIZE), one_by_one, lambda: peer(files)],
        args.images, args.rounds)
    print(f"kerascnn streamed (batched pread, shuffled):   {batched:9.0f} images/s")
    print(f"same pool, one pread per record (shuffled):    {single:9.0f} images/s")
    print(f"peer TFRecordDataset.map(parse+decode).batch:  {plain:9.0f} images/s")
    print(f"ratio kerascnn / peer: {batched / plain:.2f}x "
          f"(one-by-one reader / peer: {single / plain:.2f}x)")


if __name__ == "__main__":
    main()
