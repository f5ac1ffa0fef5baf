"""Many seeds at once: 16 seeds trained as one stacked model against 16 torch.nn runs in a row.

The book's comparisons train each configuration under >= 10 seeds. This script times
``rnnlab.train(models, task, seeds=range(S))`` (one stacked model, rnnlab's batched
recurrence) against S calls of ``rnnlab.train(model, task, seed=k)`` on models whose
recurrent layer is ``torch.nn.GRU``/``LSTM``, the same seeds, the same number of threads,
alternately in one run so that machine noise hits both alike. Models of about 1,200
parameters: a GRU with 16 hidden units or an LSTM with 14 on the 4-symbol memorisation
task (one-hot inputs, a linear read-out), B sequences of T steps per batch.

It prints, for each configuration, the median over rounds of the wall time and process
CPU time of each way, seed-runs per minute, and the speed-up over the sequential runs,
with the load average of the machine at the start and the end. The stacked runs are timed
with all seeds in one stack and in stacks of 8 (``train``'s ``stack_size``).

    .venv/bin/python benchmarks/seeds.py [--seeds 16] [--steps 20] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

import rnnlab
from rnnlab import tasks

HIDDEN = {"GRU": 16, "LSTM": 14}      # about 1,200 parameters with the 4-symbol read-out


def models_for(kind: str, task, seeds, library) -> list[nn.Module]:
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        layer = getattr(library, kind)(task.input_size, HIDDEN[kind])
        models.append(rnnlab.SequenceModel(layer, task.output_size))
    return models


def timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(kind: str, steps_per_sequence: int, args) -> None:
    string = tasks.lzw_string(4, 40, seed=0)
    task = tasks.memorisation_task(string, window=steps_per_sequence, alphabet="ABCD")
    seeds = range(args.seeds)
    options = dict(steps=args.steps, batch_size=args.batch, lr=1e-2, progress=False)
    parameters = sum(p.numel() for p in models_for(kind, task, [0], rnnlab)[0].parameters())
    runs = {"torch.nn in a row": lambda: [rnnlab.train(model, task, seed=seed, **options)
                                          for model, seed in zip(models_for(kind, task, seeds, nn), seeds)]}
    for size in args.stack_sizes:
        runs[f"stacks of {size}"] = lambda size=size: rnnlab.train(models_for(kind, task, seeds, rnnlab), task,
                                                                   seeds=seeds, stack_size=size, **options)
    rnnlab.train(models_for(kind, task, seeds, rnnlab), task, seeds=seeds, **{**options, "steps": 2})  # warm-up
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name].append(timed(run))
    wall = {name: statistics.median(t[0] for t in values) for name, values in times.items()}
    cpu = {name: statistics.median(t[1] for t in values) for name, values in times.items()}
    base = "torch.nn in a row"
    print(f"{kind} ({parameters} parameters), T={steps_per_sequence}:")
    for name in runs:
        speed = "" if name == base else (f"   speed-up {wall[base] / wall[name]:5.2f}x wall, "
                                         f"{cpu[base] / cpu[name]:5.2f}x CPU")
        print(f"    {name:18s} {wall[name]:7.2f} s wall {cpu[name]:7.2f} s CPU  "
              f"{60 * args.seeds / wall[name]:6.0f} seed-runs of {args.steps} steps per minute{speed}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="training steps per seed-run")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lengths", type=int, nargs="+", default=[40, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--stack-sizes", type=int, nargs="+", default=[16, 8],
                        help="models per stack (train's stack_size); each is timed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.seeds} seeds, B={args.batch}, {args.steps} steps each, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), median of {args.rounds} alternating rounds; "
          f"load average {os.getloadavg()[0]:.2f}")
    for kind in ("GRU", "LSTM"):
        for steps_per_sequence in args.lengths:
            compare(kind, steps_per_sequence, args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
