"""The trial runs behind the learning rates of book/chorales.md.

For each cell of the chapter (tanh RNN 100 units, GRU 46, LSTM 36) and each RMSProp
learning rate of a small grid, train 5 seeds kept apart from the chapter's (100-104)
with the chapter's other settings, and print the median and range of the best
validation NLL per step. The chapter takes, per cell, the rate with the lowest median;
it does not repeat this search at build (about 5 minutes of processor time here).

    python tools/chorales_learning_rates.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rnnlab  # noqa: E402
from rnnlab.corpora import chorales  # noqa: E402

UNITS = {"tanh RNN": (nn.RNN, 100), "GRU": (nn.GRU, 46), "LSTM": (nn.LSTM, 36)}
RATES = (1e-3, 3e-3, 1e-2, 2e-2)
SEEDS = range(100, 105)
# the chapter's other settings
BATCH, MAX_STEPS, STEPS, EVAL_EVERY, PATIENCE, CLIP = 16, 48, 500, 25, 5, 1.0


def main() -> int:
    torch.set_num_threads(1)
    corpus = chorales.load()
    valid = corpus.rolls("valid")
    order = sorted(range(len(valid)), key=lambda i: len(valid[i]))
    validation = [chorales.next_step_batch([valid[i] for i in order[k:k + 24]])
                  for k in range(0, len(order), 24)]
    task = chorales.next_step_task(corpus.rolls("train"), max_steps=MAX_STEPS)
    print(f"{'cell':9s} {'rate':>7s}  best validation NLL, median [min, max] over seeds {list(SEEDS)}")
    for cell, (layer, units) in UNITS.items():
        for rate in RATES:
            started = time.process_time()
            models = []
            for seed in SEEDS:
                torch.manual_seed(seed)
                models.append(rnnlab.SequenceModel(layer(chorales.KEYS, units), chorales.KEYS, readout="all"))
            histories = rnnlab.train(models, task, steps=STEPS, lr=rate, batch_size=BATCH, clip=CLIP,
                                     optimizer=lambda parameters, lr: torch.optim.RMSprop(parameters, lr),
                                     eval_every=EVAL_EVERY, validation=validation, keep_best="eval_loss",
                                     patience=PATIENCE, seeds=SEEDS, progress=False)
            best = np.array([min(h.eval_loss) for h in histories])
            print(f"{cell:9s} {rate:7.0e}  {np.median(best):.3f} [{best.min():.3f}, {best.max():.3f}]"
                  f"  ({time.process_time() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
