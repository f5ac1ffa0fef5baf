"""Bach chorales from music21's bundled corpus as 88-key piano rolls, split by tune.

    corpus = rnnlab.corpora.chorales.load()       # reads the shipped derived file
    corpus.rolls("train")                         # list of (T_i, 88) uint8 arrays
    corpus.paths("test")                          # ["bach/bwv10.7.mxl", ...]

The construction is the one of the JSB Chorales data set of Boulanger-Lewandowski,
Bengio and Vincent (2012): a chorale is a sequence of binary vectors over the 88 keys
of a piano, MIDI notes 21 (A0) to 108 (C8); entry ``[t, k]`` is 1 when MIDI note
``21 + k`` sounds at step ``t``. One step is a **quarter note**, as in JSB: the quarter
is the beat of the chorales' 4/4 and 3/4, so a step is one chord of the harmonisation
(an eighth-note grid would double every sequence, mostly with repeated chords, and
make our numbers incomparable with the published ones). The grid is aligned on the
downbeats; a note sounds at step ``t`` if it starts at or before the step's instant and
ends after it, so passing notes shorter than a beat between two beats are not seen.
Repeats are not expanded: a piece is read once, as notated.

What counts as a chorale (``build``): every score of Bach in music21's corpus
(``music21.corpus.getComposer("bach")``, MusicXML ``.mxl``/``.xml``; the three Humdrum
``.krn`` files, without part names, encode chorales that are also there as ``.mxl``)
that has exactly four parts named Soprano, Alto, Tenor and Bass (instrumental parts are
ignored) and whose voices sound at 90 % of the steps or more (this drops movements with
instrumental interludes, where the choir rests for bars on end).

Duplicates: two scores whose piano rolls are identical are one chorale; the first in
sorted path order is kept. Several harmonisations of one tune are *not* duplicates, but
a model that has seen one would be tested on a near copy: every harmonisation of a tune
goes to the same split. A tune is named by the first 12 melodic intervals of the
soprano (semitones between successive different pitches), which does not change with
transposition. Each tune's split follows a hash of that name (about 60 % train, 20 %
valid, 20 % test), so it does not depend on which other pieces the corpus holds.

Parsing the ~410 scores takes over a minute, so the result ships as a derived file
(``data/chorales.npz`` with the rolls, ``data/chorales.json`` with the split, the
exclusions and a content digest), written by ``tools/make_chorales.py``; a slow test
rebuilds it from music21 and compares. Nothing is downloaded, ever.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_positive_int, describe
from ..tasks import Batch, Task

__all__ = ["LOWEST_KEY", "HIGHEST_KEY", "KEYS", "COLLECTIONS", "CorpusError",
           "UnknownCollectionError", "EmptyScoreError", "KeyOutOfRangeError",
           "NotAChoraleError", "ChoraleCorpus", "piano_roll", "vocal_parts",
           "chorale_roll", "tune_name", "split_of", "build", "from_scores", "save", "load",
           "nll_per_step", "next_step_batch", "next_step_task"]

LOWEST_KEY, HIGHEST_KEY = 21, 108          # A0 and C8, the keys of a piano
KEYS = HIGHEST_KEY - LOWEST_KEY + 1        # 88
STEP_QUARTERS = 1.0                        # one step per quarter note
VOICES = ("Soprano", "Alto", "Tenor", "Bass")
MAX_SILENT_FRACTION = 0.1
TUNE_INTERVALS = 12
SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
COLLECTIONS = ("bach",)
DATA = Path(__file__).with_name("data")


class CorpusError(ValueError):
    """A score or a request that the chorale loader cannot turn into piano rolls."""


class UnknownCollectionError(CorpusError):
    """A collection name that this module does not know."""


class EmptyScoreError(CorpusError):
    """A score (or the parts asked for) without a single sounding note."""


class KeyOutOfRangeError(CorpusError):
    """A note outside the 88 keys of a piano (MIDI 21 to 108)."""


class NotAChoraleError(CorpusError):
    """A score without exactly one Soprano, Alto, Tenor and Bass part."""


def _check_collection(collection) -> str:
    if collection not in COLLECTIONS:
        raise UnknownCollectionError(
            f"collection must be one of {list(COLLECTIONS)} (music21's corpus holds no other "
            f"chorales this loader reads), got {describe(collection)}")
    return collection


def _sounding_notes(part):
    """(start, end, MIDI note) of every note of a music21 part, chords unpacked, in
    quarter lengths from the start of the score; grace notes (no duration) left out."""
    for element in part.flatten().notes:
        length = float(element.quarterLength)
        if length <= 0:
            continue
        start = float(element.getOffsetInHierarchy(part))
        for pitch in element.pitches:
            yield start, start + length, pitch.midi


def _grid_origin(parts) -> float:
    """Offset (in quarters) of a step: the downbeats are steps, so the grid starts at the
    first full measure's offset modulo the step (0 unless a pickup is a fraction of a beat)."""
    measures = parts[0].getElementsByClass("Measure")
    for measure in measures:
        if float(measure.duration.quarterLength) >= float(measure.barDuration.quarterLength):
            return float(measure.offset) % STEP_QUARTERS
    return 0.0


def piano_roll(parts, *, name: str = "score") -> np.ndarray:
    """The (T, 88) uint8 piano roll of the notes of ``parts`` (music21 parts, or a score).

    The steps are the instants one quarter note apart on a grid aligned with the
    downbeats; a note sounds at a step if it starts at or before that instant and ends
    after it. Row 0 is the first step at which a note sounds, the last row the last.

    Raises EmptyScoreError if no note sounds at any step and KeyOutOfRangeError (naming
    the note, the part and the offset) for a note outside MIDI 21..108.
    """
    parts = list(parts.parts) if hasattr(parts, "parts") else list(parts)
    if not parts:
        raise EmptyScoreError(f"{name}: no parts to read")
    origin = _grid_origin(parts)
    events = []
    for part in parts:
        for start, end, midi in _sounding_notes(part):
            if not LOWEST_KEY <= midi <= HIGHEST_KEY:
                raise KeyOutOfRangeError(
                    f"{name}: MIDI note {midi} in part {part.partName!r} at quarter {start:g} is "
                    f"outside the piano's keys {LOWEST_KEY}..{HIGHEST_KEY}")
            first = math.ceil((start - origin) / STEP_QUARTERS - 1e-9)
            last = math.ceil((end - origin) / STEP_QUARTERS - 1e-9)  # first step not sounding
            if last > first:
                events.append((first, last, midi - LOWEST_KEY))
    if not events:
        raise EmptyScoreError(f"{name}: no note sounds on the quarter-note grid")
    offset = min(first for first, _, _ in events)  # leading silence (before the first note)
    roll = np.zeros((max(last for _, last, _ in events) - offset, KEYS), dtype=np.uint8)
    for first, last, key in events:
        roll[first - offset:last - offset, key] = 1
    return roll


def vocal_parts(score, *, name: str = "score"):
    """The Soprano, Alto, Tenor and Bass parts of a score, in that order.

    A part counts as a voice if its name starts with the voice's name (scores with
    instruments name parts such as "Soprano Oboe 1 Violin1"). Raises NotAChoraleError
    unless each voice is found exactly once.
    """
    found = {voice: [] for voice in VOICES}
    for part in score.parts:
        label = (part.partName or "").strip()
        for voice in VOICES:
            if label.startswith(voice):
                found[voice].append(part)
    if any(len(parts) != 1 for parts in found.values()):
        names = [part.partName for part in score.parts]
        raise NotAChoraleError(f"{name}: needs exactly one part each named {list(VOICES)}, "
                               f"got parts {names}")
    return [found[voice][0] for voice in VOICES]


def chorale_roll(score, *, name: str = "score") -> np.ndarray:
    """The (T, 88) piano roll of a chorale's four voices (see :func:`piano_roll`)."""
    return piano_roll(vocal_parts(score, name=name), name=name)


def tune_name(score, *, name: str = "score") -> str:
    """The tune of a chorale: its first 12 soprano intervals in semitones, e.g. "+2 +2 -4 ...".

    Successive equal pitches (repeated or tied notes) count once, so that rhythm does
    not matter; intervals do not change with transposition.
    """
    soprano = vocal_parts(score, name=name)[0]
    pitches = [midi for _, _, midi in sorted(_sounding_notes(soprano), key=lambda n: (n[0], -n[2]))]
    melody = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    intervals = np.diff(melody)[:TUNE_INTERVALS]
    if len(melody) < 2:
        raise EmptyScoreError(f"{name}: the soprano has fewer than two different pitches")
    return " ".join(f"{int(i):+d}" for i in intervals)


def split_of(tune: str) -> str:
    """"train", "valid" or "test": where a tune goes, from the SHA-256 of its name."""
    value = int.from_bytes(hashlib.sha256(tune.encode()).digest()[:8], "big") / 2 ** 64
    bounds = np.cumsum(SPLIT_FRACTIONS)
    return SPLITS[int(np.searchsorted(bounds, value, side="right"))]


@dataclass
class ChoraleCorpus:
    """Piano rolls of the chorales and where each one goes.

    ``pieces`` maps a corpus path ("bach/bwv10.7.mxl") to its (T, 88) uint8 roll,
    ``split`` the same paths to "train", "valid" or "test", ``tunes`` to their tune
    name; ``excluded`` maps every corpus file left out to the reason.
    """

    pieces: dict[str, np.ndarray]
    split: dict[str, str]
    tunes: dict[str, str]
    excluded: dict[str, str] = field(default_factory=dict)
    music21_version: str = ""

    def paths(self, split: str) -> list[str]:
        """The corpus paths of one split, sorted."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {describe(split)}")
        return sorted(path for path, where in self.split.items() if where == split)

    def rolls(self, split: str) -> list[np.ndarray]:
        """The piano rolls of one split, in the order of :meth:`paths`."""
        return [self.pieces[path] for path in self.paths(split)]

    def training_subset(self, fraction: float, seed: int = 0) -> list[str]:
        """The paths of a fraction of the training chorales, at least one.

        The subsets of one seed are nested: the first ``ceil(fraction * n)`` paths of
        one seeded permutation, so 10 % is inside 25 %, inside 50 %, inside 100 %.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be a number in (0, 1], got {describe(fraction)}")
        paths = self.paths("train")
        order = np.random.default_rng(seed).permutation(len(paths))
        return [paths[i] for i in order[:max(1, math.ceil(fraction * len(paths)))]]

    def digest(self) -> str:
        """SHA-256 of the content: every path, its split and its roll, in sorted order."""
        sha = hashlib.sha256()
        for path in sorted(self.pieces):
            roll = self.pieces[path]
            sha.update(f"{path}\0{self.split[path]}\0{roll.shape[0]}\0".encode())
            sha.update(np.packbits(roll.astype(bool), axis=1).tobytes())
        return sha.hexdigest()


def _corpus_files(collection: str) -> list[Path]:
    from music21 import corpus

    return sorted((p for p in corpus.getComposer(collection) if p.suffix in (".mxl", ".xml", ".krn")),
                  key=lambda p: p.name)


def build(collection: str = "bach", *, progress: bool = False) -> ChoraleCorpus:
    """Parse the chorales of music21's corpus into a :class:`ChoraleCorpus` (slow: about
    0.1-0.2 s of CPU per score, over a minute in all)."""
    from music21 import converter

    _check_collection(collection)
    files = _corpus_files(collection)
    musicxml = {p.stem for p in files if p.suffix != ".krn"}
    excluded = {}

    def scores():
        for number, file in enumerate(files, 1):
            path = f"{collection}/{file.name}"
            if progress:
                print(f"{number}/{len(files)} {path}", flush=True)
            if file.suffix == ".krn":  # no part names; the same chorales exist as .mxl
                excluded[path] = (f"Humdrum encoding of {collection}/{file.stem}, read from its .mxl"
                                  if file.stem in musicxml else "Humdrum file without part names")
                continue
            yield path, converter.parse(file)

    corpus = from_scores(scores())
    corpus.excluded.update(excluded)
    corpus.excluded = dict(sorted(corpus.excluded.items()))
    return corpus


def from_scores(scores) -> ChoraleCorpus:
    """A :class:`ChoraleCorpus` from ``(path, music21 score)`` pairs, by the rules of
    this module: four voices, silent at no more than 10 % of the steps, identical rolls
    kept once (the first one given; :func:`build` goes in sorted path order), each
    tune's pieces in one split."""
    import music21

    pieces, tunes, excluded, seen = {}, {}, {}, {}
    for path, score in scores:  # one at a time: a parsed score is large
        try:
            roll = chorale_roll(score, name=path)
            tune = tune_name(score, name=path)
        except CorpusError as error:
            excluded[path] = str(error).removeprefix(f"{path}: ")
            continue
        silent = float((roll.sum(axis=1) == 0).mean())
        if silent > MAX_SILENT_FRACTION:
            excluded[path] = f"voices silent at {silent:.0%} of the steps (instrumental interludes)"
            continue
        key = roll.tobytes() + str(roll.shape).encode()
        if key in seen:
            excluded[path] = f"duplicate of {seen[key]} (identical piano roll)"
            continue
        seen[key] = path
        pieces[path], tunes[path] = roll, tune
    split = {path: split_of(tune) for path, tune in tunes.items()}
    return ChoraleCorpus(pieces, split, tunes, excluded, music21.__version__)


def save(corpus: ChoraleCorpus, folder=DATA, *, stem: str = "chorales") -> tuple[Path, Path]:
    """Write the rolls (``<stem>.npz``) and the record of the split (``<stem>.json``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = sorted(corpus.pieces)
    rolls = np.concatenate([corpus.pieces[p] for p in paths]).astype(bool)
    npz = folder / f"{stem}.npz"
    np.savez_compressed(npz, paths=np.array(paths), lengths=np.array([len(corpus.pieces[p]) for p in paths]),
                        packed=np.packbits(rolls, axis=1))
    record = {
        "about": "Bach chorales of music21's corpus as 88-key piano rolls, one step per quarter "
                 "note; made by tools/make_chorales.py, read by rnnlab.corpora.chorales.load",
        "music21": corpus.music21_version,
        "digest": corpus.digest(),
        "counts": {s: len(corpus.paths(s)) for s in SPLITS},
        "splits": {s: {p: corpus.tunes[p] for p in corpus.paths(s)} for s in SPLITS},
        "excluded": dict(sorted(corpus.excluded.items())),
    }
    record_path = folder / f"{stem}.json"
    record_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return npz, record_path


def load(collection: str = "bach", folder=DATA, *, stem: str = "chorales") -> ChoraleCorpus:
    """Read the derived file written by :func:`save` and check it against its digest."""
    _check_collection(collection)
    folder = Path(folder)
    npz, record_path = folder / f"{stem}.npz", folder / f"{stem}.json"
    for needed in (npz, record_path):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing: run `python tools/make_chorales.py` to make it")
    record = json.loads(record_path.read_text())
    with np.load(npz) as data:
        paths, lengths = [str(p) for p in data["paths"]], data["lengths"]
        rolls = np.unpackbits(data["packed"], axis=1, count=KEYS).astype(np.uint8)
    ends = np.cumsum(lengths)
    pieces = {p: rolls[end - n:end] for p, n, end in zip(paths, lengths, ends)}
    split = {p: s for s in SPLITS for p in record["splits"][s]}
    tunes = {p: t for s in SPLITS for p, t in record["splits"][s].items()}
    corpus = ChoraleCorpus(pieces, split, tunes, record["excluded"], record["music21"])
    if set(split) != set(pieces) or corpus.digest() != record["digest"]:
        raise CorpusError(f"{npz} does not match {record_path} (digest or paths differ): "
                          "remake both with `python tools/make_chorales.py`")
    return corpus


def nll_per_step(logits, targets, mask=None):
    """Negative log-likelihood in nats per time step, summed over the keys.

    Each key is a Bernoulli variable with probability p = sigmoid(a), a its
    logit; a step costs -sum_k [x_k log p_k + (1 - x_k) log(1 - p_k)],
    computed stably as sum_k softplus(a_k) - x_k a_k. The result is the total
    over every step of every sequence divided by the number of steps
    (Boulanger-Lewandowski et al. 2012; Chung et al. 2014).

    logits, targets: tensors of one shape (..., 88). mask: the shape without
    the key axis, 1 on real steps and 0 on padding (left out); None counts
    every step.
    """
    if not all(isinstance(t, torch.Tensor) for t in (logits, targets)):
        raise TypeError("logits and targets must be torch tensors, got "
                        f"{describe(logits)} and {describe(targets)}")
    if logits.shape != targets.shape:
        raise ValueError("logits and targets must have the same shape, got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    per_step = (F.softplus(logits) - targets * logits).sum(dim=-1)
    if mask is None:
        return per_step.mean()
    if mask.shape != per_step.shape:
        raise ValueError(f"mask must have shape {tuple(per_step.shape)} "
                         "(logits without the key axis), got "
                         f"{tuple(mask.shape)}")
    return (per_step * mask).sum() / mask.sum()


def next_step_batch(rolls, starts=None) -> Batch:
    """Rolls as a padded batch for predicting each step from the ones before it.

    Every step is predicted, the first one from a silent input: ``inputs[t]`` is
    ``roll[t - 1]`` (zeros at t = 0) and ``targets[t]`` is ``roll[t]``. Shapes are
    (T, N, 88) float32 with T the longest roll, and ``mask`` (T, N) is True on real steps.
    With ``starts`` (one step index per roll), each roll is taken from that step on and
    its first input is the chord before it (silence only at step 0).
    """
    rolls = [np.asarray(roll) for roll in rolls]
    if not rolls or any(roll.ndim != 2 or roll.shape[1] != KEYS or len(roll) == 0 for roll in rolls):
        raise ValueError(f"rolls must be a non-empty list of (T, {KEYS}) piano rolls, got "
                         f"{[describe(roll) for roll in rolls[:3]]}")
    starts = [0] * len(rolls) if starts is None else [int(s) for s in starts]
    if len(starts) != len(rolls) or any(not 0 <= s < len(r) for s, r in zip(starts, rolls)):
        raise ValueError(f"starts must give one step inside each roll, got {starts[:8]}")
    steps = max(len(roll) - start for roll, start in zip(rolls, starts))
    inputs = torch.zeros(steps, len(rolls), KEYS)
    targets = torch.zeros(steps, len(rolls), KEYS)
    mask = torch.zeros(steps, len(rolls), dtype=torch.bool)
    for n, (roll, start) in enumerate(zip(rolls, starts)):
        piece = torch.from_numpy(roll.astype(np.float32))
        length = len(roll) - start
        targets[:length, n] = piece[start:]
        inputs[1:length, n] = piece[start:-1]
        if start:
            inputs[0, n] = piece[start - 1]
        mask[:length, n] = True
    return Batch(inputs, targets, mask)


def next_step_task(rolls, name: str = "chorales", *, max_steps: int | None = None) -> Task:
    """A :class:`rnnlab.tasks.Task` for :func:`rnnlab.train`: each batch is
    ``batch_size`` different rolls drawn at random (:func:`next_step_batch`), the loss
    is :func:`nll_per_step` over the real steps, and a model needs 88 inputs, 88
    outputs and a read-out at every step.

    With ``max_steps``, a drawn roll longer than that is cut to a window of
    ``max_steps`` steps at a random place (its first input is then the chord before the
    window), which bounds the padding of a batch; shorter rolls are used whole.
    """
    rolls = list(rolls)
    next_step_batch(rolls[:1])  # checks the rolls' shape
    if max_steps is not None:
        max_steps = check_positive_int("max_steps", max_steps)

    def sample(batch_size: int, *, seed) -> Batch:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        chosen = [rolls[i] for i in rng.choice(len(rolls), size=min(batch_size, len(rolls)), replace=False)]
        if max_steps is None:
            return next_step_batch(chosen)
        starts = [int(rng.integers(len(roll) - max_steps + 1)) if len(roll) > max_steps else 0
                  for roll in chosen]
        return next_step_batch([roll[:start + max_steps] for roll, start in zip(chosen, starts)], starts)

    def loss(predictions, batch):
        return nll_per_step(predictions, batch.targets, batch.mask.to(predictions.dtype))

    return Task(name, sample, loss, None, KEYS, KEYS, "all")
