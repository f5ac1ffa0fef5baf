"""Submissions of assignment char_lm: the usual mistakes of bits per character and of sampling,
and both functions written correctly in another style (log_softmax and gather; Gumbel-max draws)."""

from . import Submission, failing

ASSIGNMENT = "char_lm"
BITS = ("test_bits_per_char", "test_bits_per_char_hidden")
SAMPLE = ("test_sample", "test_sample_hidden")

SUBMISSIONS = [
    Submission("natural_log",
               edits={"bits_per_char": [("return nats / math.log(2)", "return nats")]},
               fails=failing("the value is in nats", *BITS)),
    Submission("targets_not_shifted",
               edits={"bits_per_char": [("logits[:-1].reshape(-1, vocabulary), targets[1:].reshape(-1)",
                                         "logits.reshape(-1, vocabulary), targets.reshape(-1)")]},
               fails=failing("the targets are not shifted by one", *BITS)),
    # Right on ordinary logits; NaN once exp overflows float32 (hidden tests only).
    Submission("exp_overflows", sources={"bits_per_char": (
        "def bits_per_char(logits, targets):\n"
        "    p = torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True)\n"
        "    picked = p[:-1].gather(-1, targets[1:].unsqueeze(-1))\n"
        "    return -torch.log2(picked).mean()")},
        fails={"test_bits_per_char_hidden": "the probabilities overflowed"}),
    Submission("temperature_after_softmax",
               edits={"sample": [("torch.softmax(logits[-1] / temperature, dim=-1)",
                                  "torch.softmax(logits[-1], dim=-1) / temperature")]},
               fails=failing("the temperature was applied after the softmax", *SAMPLE)),
    Submission("prefix_not_fed",
               edits={"sample": [("model(prefix, None)", "model(prefix[-1:], None)")]},
               fails=failing("the prefix was not fed to the model", *SAMPLE)),
    Submission("seed_ignored",
               edits={"sample": [("torch.multinomial(probabilities, 1, generator=generator)",
                                  "torch.multinomial(probabilities, 1)")]},
               fails=failing("the generator's seed is ignored", *SAMPLE)),
    # Correct in another style: log_softmax with gather, and the Gumbel-max trick.
    Submission("style_gather_and_gumbel", sources={
        "bits_per_char": (
            "def bits_per_char(logits, targets):\n"
            "    log_p = torch.log_softmax(logits.double(), dim=-1)[:-1]\n"
            "    picked = log_p.gather(-1, targets[1:].unsqueeze(-1)).squeeze(-1)\n"
            "    return float(-picked.mean() / math.log(2))"),
        "sample": (
            "def sample(model, prefix, temperature, generator, steps):\n"
            "    out = torch.empty(steps, prefix.shape[1], dtype=torch.int64)\n"
            "    with torch.no_grad():\n"
            "        logits, state = model(prefix)\n"
            "        for t in range(steps):\n"
            "            u = torch.rand(logits[-1].shape, generator=generator)\n"
            "            out[t] = (logits[-1] / temperature - torch.log(-torch.log(u))).argmax(dim=-1)\n"
            "            logits, state = model(out[t:t + 1], state)\n"
            "    return out"),
    }),
]
