"""Speed of rnnlab's GRU and LSTM against torch.nn's, forward + backward, measured side by side.

Prints, for each cell at B=32, T=100, I=32, H=128 (float32, CPU unless --device says
otherwise), the median wall time of one training step (forward, sum of outputs as the
loss, backward) for both implementations with the same weights, and their ratio. The two
are timed alternately in one run so that machine noise hits both alike; the load average
of the machine is printed at the start and the end (on a busy machine, give --threads 1).

    .venv/bin/python benchmarks/modules.py [--repeats 15] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import rnnlab


def step_time(module, x, device):
    """Wall time of one forward + backward pass."""
    module.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    output = module(x)[0]
    output.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare(name, args, device, onednn=True):
    """Time torch.nn's module and ours alternately; print the medians and their ratio.

    On a CPU, torch.nn hands the LSTM (only) to oneDNN's fused kernel; ``onednn=False``
    switches that off to compare with PyTorch's own ATen path as well.
    """
    # set_flags with only `_enabled`: the flags() context manager also sets TF32 and warns about it
    before = torch.backends.mkldnn.set_flags(_enabled=onednn, _fp32_precision=None)[0]
    try:
        _compare(name, args, device, "" if onednn else " (torch.nn without oneDNN)")
    finally:
        torch.backends.mkldnn.set_flags(_enabled=before, _fp32_precision=None)


def _compare(name, args, device, note):
    torch.manual_seed(0)
    reference = getattr(torch.nn, name)(args.input, args.hidden).to(device)
    ours = getattr(rnnlab, name)(args.input, args.hidden).to(device)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(args.steps, args.batch, args.input, device=device)
    for _ in range(3):                       # warm-up: allocator, caches, lazy init
        step_time(reference, x, device), step_time(ours, x, device)
    times = {"torch.nn": [], "rnnlab": []}
    for _ in range(args.repeats):
        times["torch.nn"].append(step_time(reference, x, device))
        times["rnnlab"].append(step_time(ours, x, device))
    median = {key: statistics.median(value) for key, value in times.items()}
    print(f"{name:5s} torch.nn {median['torch.nn'] * 1e3:8.2f} ms   rnnlab {median['rnnlab'] * 1e3:8.2f} ms"
          f"   ratio rnnlab/torch.nn = {median['rnnlab'] / median['torch.nn']:.2f}{note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"B={args.batch} T={args.steps} I={args.input} H={args.hidden} float32 on {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for name in ("GRU", "LSTM", "RNN"):
        compare(name, args, device)
    if device.type == "cpu":
        compare("LSTM", args, device, onednn=False)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
