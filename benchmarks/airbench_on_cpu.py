"""Runs the published airbench package's `train94` on this CPU, on a kerascnn CIFAR-10 npz.

airbench (PyPI, KellerJordan/cifar10-airbench) is written for one CUDA GPU in float16. Nothing
of its code is copied or edited here; from outside, this script
- writes the npz's arrays as the `cifar10/train.pt` and `test.pt` its `CifarLoader` reads,
- makes its loaders load to the CPU (the `gpu` argument's default),
- makes `Module.cuda` a no-op and `half()` mean float32 for modules and tensors (PyTorch's CPU
  kernels for float16 convolutions are slow or absent); with `--precision bfloat16` (the
  default) the network's forward pass runs under `torch.autocast("cpu", bfloat16)` through the
  `make_net` argument `train94` takes, its logits cast back to float32 for the loss; the
  whitening's covariance stays float32, as on the GPU,
- times with `time.perf_counter` in place of CUDA events.

It needs its own environment (PyTorch beside TensorFlow is not kerascnn's business):

    python -m venv torchvenv && torchvenv/bin/pip install torch torchvision airbench
    torchvenv/bin/python benchmarks/airbench_on_cpu.py DIR/cifar10.npz [--epochs 9.9]

The npz is `python -m kerascnn.data.make_npz ARCHIVE DIR/cifar10.npz` (same pixels as kerascnn
trains on). airbench prints its table: per-epoch test accuracy, then `eval` with its
test-time augmentation and the total training seconds (evaluation off the clock, as its own).
"""

import argparse
import os
import tempfile
import time

import numpy as np
import torch


class _Timer:
    """Stands in for torch.cuda.Event: records perf_counter, `elapsed_time` in milliseconds."""

    def __init__(self, enable_timing=True):
        self.at = None

    def record(self):
        self.at = time.perf_counter()

    def elapsed_time(self, end):
        return 1e3 * (end.at - self.at)


def write_torch_arrays(npz_path, folder):
    """Writes the npz's splits in the layout `airbench.CifarLoader` reads from `folder`."""
    data = np.load(npz_path)
    classes = [str(name) for name in data["class_names"]]
    os.makedirs(folder, exist_ok=True)
    for split in ("train", "test"):
        torch.save({"images": torch.from_numpy(data[f"x_{split}"]),
                    "labels": torch.from_numpy(data[f"y_{split}"]), "classes": classes},
                   os.path.join(folder, f"{split}.pt"))


def switch_to_cpu():
    """Points airbench's CUDA calls at the CPU, and `half()` at float32."""
    torch.cuda.Event = _Timer
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    torch.nn.Module.half = torch.nn.Module.float
    torch.Tensor.half = torch.Tensor.float
    import airbench.utils
    defaults = list(airbench.utils.CifarLoader.__init__.__defaults__)
    defaults[-1] = "cpu"  # gpu=0
    airbench.utils.CifarLoader.__init__.__defaults__ = tuple(defaults)


def autocast_net(make_net):
    """`make_net` whose network runs its forward pass in bfloat16 and returns float32 logits."""
    def make():
        net = make_net()
        forward = net.forward

        def bfloat16_forward(inputs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return forward(inputs).float()
        net.forward = bfloat16_forward
        return net
    return make


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", help="a kerascnn CIFAR-10 npz (python -m kerascnn.data.make_npz)")
    parser.add_argument("--epochs", type=float, default=9.9, help="airbench94's 9.9 by default")
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}")
    switch_to_cpu()
    import airbench
    with tempfile.TemporaryDirectory() as work:
        write_torch_arrays(args.npz, os.path.join(work, "cifar10"))
        os.chdir(work)  # airbench reads ./cifar10
        make_net = airbench.make_net94
        if args.precision == "bfloat16":
            make_net = autocast_net(make_net)
        airbench.train94(epochs=args.epochs, make_net=make_net)


if __name__ == "__main__":
    main()
