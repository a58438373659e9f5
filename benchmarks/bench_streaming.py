"""Streaming an image folder: peak memory, pipeline speed against Keras, and ResNet-18 feeding.

On generated folders of 160x160 JPEGs (written under --root, never in the repository), in one
run on the same machine:
1. peak resident memory (ru_maxrss of a fresh subprocess) of `load` + one training epoch of
   LeNet-5 (inputs resized to 32x32 in the model), streamed (`stream=True`) and in memory
   (`stream=False`), at two folder sizes: the streamed peak should not grow with the images;
2. images/s of one shuffled epoch of kerascnn's streaming pipeline (`Data.pipeline`) against
   `keras.utils.image_dataset_from_directory` on the same folder (both decode the JPEGs in
   tf.data and resize to 160x160; kerascnn with Pillow's accurate JPEG DCT, which gives the
   in-memory loader's pixels, and again with Keras' fast DCT), without a cache, then with
   one: kerascnn's `cache=` (memory-mapped decoded uint8 images) against Keras' dataset cast
   to uint8, `.cache(file)`, a shuffle buffer of 2,048 images and a cast back; goal >= 1.0x
   (wall-clock and CPU time);
3. ResNet-18 at 64x64 training images/s (train_on_batch on one batch) against the streaming
   pipeline's images/s: goal pipeline / model >= 5x.

Usage: PYTHONPATH=. python benchmarks/bench_streaming.py [--images 20000] [--quick]
       [--root /tmp/streaming/bench] [--rounds 2]
"""

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

SIZE = 160
CLASSES = 10
DISTINCT = 300  # distinct JPEGs, written over and over: generation takes seconds
BATCH_SIZE = 64


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000, help="images of the large folder")
    parser.add_argument("--root", default="/tmp/streaming/bench", help="where folders go")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per side")
    parser.add_argument("--quick", action="store_true", help="2,000 images, 1 round")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds = 2000, 1
    return args


def make_folder(path, images):
    """Writes `images` 160x160 JPEGs into CLASSES class folders (kept if already complete)."""
    from PIL import Image

    marker = os.path.join(path, ".complete")
    if os.path.isfile(marker):
        return path
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, SIZE)
    encoded = []
    for index in range(DISTINCT):
        colour = rng.uniform(0.2, 1.0, 3)
        angle = rng.uniform(0, np.pi)
        field = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
        pixels = 255 * field[..., None] * colour + rng.normal(0, 12, (SIZE, SIZE, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                         quality=90)
        encoded.append(buffer.getvalue())
    for label in range(CLASSES):
        os.makedirs(os.path.join(path, f"class{label}"))
    for index in range(images):
        name = os.path.join(path, f"class{index % CLASSES}", f"{index:06d}.jpg")
        with open(name, "wb") as f:
            f.write(encoded[index % DISTINCT])
    open(marker, "w").close()
    return path


def child(mode, folder):
    """Loads `folder` (stream=True/False) and trains LeNet-5 one epoch; prints peak RSS."""
    import kerascnn
    from kerascnn.data import load

    start = time.perf_counter()
    data = load(folder, stream=mode == "stream", test_split=None)
    loaded = time.perf_counter() - start
    kerascnn.train("lenet5", data, epochs=1, batch_size=BATCH_SIZE, verbose=0,
                   deterministic=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"peak_mb": peak, "load_s": loaded,
                      "total_s": time.perf_counter() - start}))


def peak_memory(mode, folder):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--child", mode, folder], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def epoch_rate(dataset, rounds):
    """Best (images/s, images per CPU-second) over `rounds` passes, after a warm-up pass.

    CPU-seconds count every thread of the process: steadier than wall-clock time when other
    work loads the machine.
    """
    walls, cpus = [], []
    for round_ in range(rounds + 1):
        start, cpu, count = time.perf_counter(), time.process_time(), 0
        for x, _ in dataset:
            count += int(x.shape[0])
        if round_:
            walls.append(count / (time.perf_counter() - start))
            cpus.append(count / (time.process_time() - cpu))
    return max(walls), max(cpus)


def throughput(folder, cache_dir, rounds):
    import keras
    import tensorflow as tf

    from kerascnn.data import load, pools

    ours = load(folder, stream=True, test_split=None)
    ours_ds = ours.pipeline("train", BATCH_SIZE)
    keras_ds = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=BATCH_SIZE, shuffle=True, seed=0,
        verbose=False)
    rates = {"kerascnn": epoch_rate(ours_ds, rounds), "keras": epoch_rate(keras_ds, rounds)}
    # The same JPEG decoder as Keras' (libjpeg's fast DCT) rather than Pillow's accurate one.
    accurate, pools.JPEG_DCT = pools.JPEG_DCT, ""
    same_decoder = load(folder, stream=True, test_split=None).pipeline("train", BATCH_SIZE)
    rates["kerascnn, fast DCT"] = epoch_rate(same_decoder, rounds)
    pools.JPEG_DCT = accurate
    shutil.rmtree(cache_dir, ignore_errors=True)
    start = time.perf_counter()
    cached = load(folder, stream=True, test_split=None, cache=os.path.join(cache_dir, "ours"))
    rates["cache_build_s"] = time.perf_counter() - start
    keras_cached = keras.utils.image_dataset_from_directory(
        folder, image_size=(SIZE, SIZE), batch_size=None, shuffle=False, verbose=False)
    os.makedirs(os.path.join(cache_dir, "keras"))
    # Cached as uint8, as kerascnn caches: a quarter of float32's disk and reading.
    keras_cached = (keras_cached.map(lambda x, y: (tf.cast(x, tf.uint8), y),
                                     num_parallel_calls=tf.data.AUTOTUNE)
                    .cache(os.path.join(cache_dir, "keras", "cache"))
                    .shuffle(2048, seed=0).batch(BATCH_SIZE)
                    .map(lambda x, y: (tf.cast(x, tf.float32), y),
                         num_parallel_calls=tf.data.AUTOTUNE)
                    .prefetch(tf.data.AUTOTUNE))
    rates["kerascnn cached"] = epoch_rate(cached.pipeline("train", BATCH_SIZE), rounds)
    rates["keras cached"] = epoch_rate(keras_cached, rounds)  # the warm-up pass fills it
    shutil.rmtree(cache_dir, ignore_errors=True)
    return rates


def resnet18_rate(steps=8):
    import keras

    from kerascnn import build_model

    model = build_model("resnet18", input_shape=(64, 64, 3), num_classes=CLASSES)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 1, (BATCH_SIZE, 64, 64, 3)).astype(np.float32)
    y = keras.utils.to_categorical(np.arange(BATCH_SIZE) % CLASSES, CLASSES)
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * BATCH_SIZE / (time.perf_counter() - start)


def main():
    args = parse_args()
    if args.child:
        return child(*args.child)
    began = time.perf_counter()
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    small = make_folder(os.path.join(args.root, f"jpeg{args.images // 4}"), args.images // 4)
    large = make_folder(os.path.join(args.root, f"jpeg{args.images}"), args.images)
    print(f"folders ready after {time.perf_counter() - began:.0f} s")

    print("\n| images | mode | peak RSS MB | load s | load + epoch s |")
    print("| ---: | --- | ---: | ---: | ---: |")
    peaks = {}
    for folder, count in ((small, args.images // 4), (large, args.images)):
        for mode in ("stream", "memory"):
            result = peak_memory(mode, folder)
            peaks[mode, count] = result["peak_mb"]
            print(f"| {count} | {mode} | {result['peak_mb']:.0f} | {result['load_s']:.1f} | "
                  f"{result['total_s']:.1f} |", flush=True)
    growth = {mode: peaks[mode, args.images] - peaks[mode, args.images // 4]
              for mode in ("stream", "memory")}
    print(f"peak growth from {args.images // 4} to {args.images} images: streamed "
          f"{growth['stream']:+.0f} MB, in memory {growth['memory']:+.0f} MB")

    rates = throughput(large, os.path.join(args.root, "cache"), args.rounds)
    model = resnet18_rate()
    print(f"\n| pipeline ({args.images} JPEGs {SIZE}x{SIZE}, batch {BATCH_SIZE}) | images/s | "
          "ratio to keras | images/CPU-s | CPU ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, peer in (("kerascnn", "keras"), ("kerascnn, fast DCT", "keras"), ("keras", "keras"),
                       ("kerascnn cached", "keras cached"), ("keras cached", "keras cached")):
        (wall, cpu), (peer_wall, peer_cpu) = rates[name], rates[peer]
        print(f"| {name} | {wall:.0f} | {wall / peer_wall:.2f} | {cpu:.0f} | "
              f"{cpu / peer_cpu:.2f} |")
    print(f"kerascnn cache built in {rates['cache_build_s']:.1f} s")
    streamed, cached = rates["kerascnn"][0] / model, rates["kerascnn cached"][0] / model
    print(f"\nResNet-18 64x64 training: {model:.0f} images/s; streaming pipeline / model = "
          f"{streamed:.1f}x (cached {cached:.1f}x); goal >= 5x")
    print(f"\nload average {os.getloadavg()[0]:.2f}; {time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
