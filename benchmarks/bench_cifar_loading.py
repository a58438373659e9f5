"""How long, and how much memory, does loading the full CIFAR-10 (60,000 JPEGs) take?

    PYTHONPATH=. python benchmarks/bench_cifar_loading.py [--data-dir DIR] [--workdir DIR]

Reads the offline copy `cifar10-jpg.tar.gz` (from --data-dir, else $KERASCNN_DATA_DIR, else
../shared/datasets beside the repository), unpacks it once into a temporary folder (removed
at the end) and measures, each in a fresh Python process so that the peak resident memory
(VmHWM of /proc/self/status, else `resource.getrusage().ru_maxrss`) is that mode's alone:

- archive, in memory: `load("cifar10")` from a folder holding only the archive (read
  straight from its members, nothing unpacked);
- folder, in memory: `load(folder, stream=False)`;
- folder, streamed: `load(folder, stream=True)` (listing, which decodes every file once to
  check it) and one pass of the train and test pipelines;
- folder, streamed with cache: the same with `cache=DIR`, first run (builds the cache) and
  second run (reads it);
- `.npz`: `load("cifar10")` from the `cifar10.npz` that `to_npz` wrote;
- peer: `keras.utils.image_dataset_from_directory` on train/ and test/ and one pass of both.

Each row gives the load time, the time of one pass over the batches (streamed modes and the
peer; in-memory modes: their pipelines over the arrays), their CPU time and the peak
resident memory after loading and after the pass, with the process's memory after imports
(TensorFlow) for reference. The load average is printed: the machine may be shared.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

ARCHIVE = "cifar10-jpg.tar.gz"
BATCH = 256
MODES = {
    "archive_memory": "archive, in memory",
    "folder_memory": "folder, in memory",
    "folder_stream": "folder, streamed",
    "folder_cache_build": "folder, streamed, cache (1st run)",
    "folder_cache_hit": "folder, streamed, cache (2nd run)",
    "npz": "cifar10.npz (to_npz)",
    "keras_peer": "keras image_dataset_from_directory",
}


def _rss_mb():
    """Peak resident memory of this process in MB: VmHWM (Linux), else ru_maxrss.

    ru_maxrss is inherited through fork and kept across exec on Linux, so a child would
    report its parent's peak; VmHWM belongs to the process's own address space."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _one_pass(datasets):
    """Iterates every batch once; returns the number of images."""
    count = 0
    for dataset in datasets:
        for x, _ in dataset:
            count += int(x.shape[0])
    return count


def run_mode(mode, work):
    """Measures one mode in this process; returns its figures as a dict."""
    import kerascnn.data  # noqa: F401  (imports TensorFlow: not part of the timing)
    import keras

    from kerascnn.data import load

    baseline = _rss_mb()
    folder = os.path.join(work, "cifar10")
    start, cpu = time.perf_counter(), _cpu()
    if mode == "archive_memory":
        data = load("cifar10", data_dir=os.path.join(work, "archive_only"), download=False)
    elif mode == "folder_memory":
        data = load(folder, stream=False)
    elif mode == "folder_stream":
        data = load(folder, stream=True)
    elif mode in ("folder_cache_build", "folder_cache_hit"):
        data = load(folder, stream=True, cache=os.path.join(work, "cache"))
    elif mode == "npz":
        data = load("cifar10", data_dir=os.path.join(work, "npz_only"), download=False)
    elif mode == "keras_peer":
        options = dict(image_size=(32, 32), batch_size=BATCH, shuffle=False, verbose=False)
        data = [keras.utils.image_dataset_from_directory(os.path.join(folder, split), **options)
                for split in ("train", "test")]
    loaded, loaded_cpu, loaded_mb = time.perf_counter(), _cpu(), _rss_mb()
    if mode == "keras_peer":
        images = _one_pass(data)
    else:
        images = _one_pass(data.pipeline(split, BATCH, shuffle=False)
                           for split in ("train", "test"))
        assert data.class_names[0] == "airplane" and data.input_shape == (32, 32, 3)
    end, end_cpu = time.perf_counter(), _cpu()
    assert images == 60000, images
    return {"mode": mode, "load_s": loaded - start, "load_cpu_s": loaded_cpu - cpu,
            "pass_s": end - loaded, "pass_cpu_s": end_cpu - loaded_cpu, "images": images,
            "baseline_mb": baseline, "load_peak_mb": loaded_mb, "peak_mb": _rss_mb()}


def prepare(archive, work):
    """Unpacks the archive, links it alone into a folder and writes cifar10.npz; timed."""
    from kerascnn.data import to_npz

    figures = {}
    start = time.perf_counter()
    with tarfile.open(archive) as packed:
        packed.extractall(os.path.join(work, "cifar10"), filter="data")
    figures["unpack_s"] = time.perf_counter() - start
    os.makedirs(os.path.join(work, "archive_only"))
    os.symlink(os.path.abspath(archive), os.path.join(work, "archive_only", ARCHIVE))
    start = time.perf_counter()
    to_npz(archive, os.path.join(work, "npz_only", "cifar10.npz"))
    figures["to_npz_s"] = time.perf_counter() - start
    figures["npz_mb"] = os.path.getsize(os.path.join(work, "npz_only", "cifar10.npz")) / 1e6
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder holding cifar10-jpg.tar.gz")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.workdir)))
        return
    repo = pathlib.Path(__file__).resolve().parents[1]
    data_dir = pathlib.Path(args.data_dir or os.environ.get("KERASCNN_DATA_DIR")
                            or repo.parent / "shared" / "datasets")
    archive = data_dir / ARCHIVE
    if not archive.is_file():
        sys.exit(f"{archive} not found: pass --data-dir DIR holding {ARCHIVE}.")
    work = args.workdir or tempfile.mkdtemp(prefix="bench-cifar-")
    os.makedirs(work, exist_ok=True)
    try:
        print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs", flush=True)
        setup = prepare(archive, work)
        print(f"tar extract (Python tarfile) {setup['unpack_s']:.1f} s; to_npz from the archive "
              f"{setup['to_npz_s']:.1f} s, cifar10.npz {setup['npz_mb']:.0f} MB", flush=True)
        rows = []
        for mode in MODES:
            output = subprocess.run(
                [sys.executable, __file__, "--mode", mode, "--workdir", work],
                check=True, capture_output=True, text=True, env={**os.environ,
                                                                 "TF_CPP_MIN_LOG_LEVEL": "3"})
            rows.append(json.loads(output.stdout.strip().splitlines()[-1]))
            print(f"  {MODES[mode]}: done (load average {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'mode':38} {'load s':>7} {'(cpu)':>6} {'pass s':>7} {'(cpu)':>6} "
          f"{'total s':>8} {'peak MB: load':>14} {'+ pass':>7} {'after import':>13}")
    for row in rows:
        print(f"{MODES[row['mode']]:38} {row['load_s']:7.1f} {row['load_cpu_s']:6.1f} "
              f"{row['pass_s']:7.1f} {row['pass_cpu_s']:6.1f} {row['load_s'] + row['pass_s']:8.1f} "
              f"{row['load_peak_mb']:14.0f} {row['peak_mb']:7.0f} {row['baseline_mb']:13.0f}")
    by_mode = {row["mode"]: row for row in rows}
    peer = by_mode["keras_peer"]["load_s"] + by_mode["keras_peer"]["pass_s"]
    for mode in ("archive_memory", "folder_memory", "folder_stream", "folder_cache_hit"):
        ours = by_mode[mode]["load_s"] + by_mode[mode]["pass_s"]
        print(f"time ratio keras peer / {MODES[mode]}: {peer / ours:.2f}")
    print(f"load average after: {os.getloadavg()}")
    print("reproduce: PYTHONPATH=. python benchmarks/bench_cifar_loading.py"
          + (f" --data-dir {args.data_dir}" if args.data_dir else ""))


if __name__ == "__main__":
    main()
