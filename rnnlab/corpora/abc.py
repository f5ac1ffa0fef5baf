"""Folk tunes in ABC notation, read from the corpus inside music21's wheel, as text.

ABC notation writes a tune as a few header lines and a body of notes, one character per
symbol, so a tune is a short string that a character-level language model can learn::

    M:6/8
    L:1/8
    K:G
    D|GAG GBd|edB dBA|...

The loader takes the three collections of ABC files that music21 ships (the Essen folk
song collection, O'Neill's *Music of Ireland* with its 1,850 melodies, and Ryan's
*Mammoth Collection* of fiddle tunes), splits each file into tunes at its ``X:`` lines,
and keeps of each tune only what makes the music: the meter ``M:``, the unit note
length ``L:`` and the key ``K:`` (the last header line), then the body. Titles, notes,
origins, sources, transcribers and the like (``T:``, ``N:``, ``O:``, ``S:``, ``Z:``, ...)
are dropped, and so are comments and lyrics. music21 reads every kept tune
(:class:`music21.abcFormat.ABCHandler` tokenises it, :class:`music21.abcFormat.ABCMetadata`
interprets the meter, unit length and key); a tune it cannot read, or one without a key,
a meter or a note, is skipped and counted by reason, never raised.

Tunes whose text is the same once white space is removed are kept once. Each distinct
tune goes to the training, validation or test split by a hash of that text, so the split
is the same on every machine, does not depend on the order of the files, and a tune
cannot sit in two splits.

Nothing is downloaded: the files come with the pinned ``music21`` package.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from music21 import abcFormat, corpus

__all__ = ["COLLECTIONS", "UNKNOWN", "Tune", "CharVocabulary", "ABCCorpus", "MalformedTune",
           "collection_paths", "raw_tunes", "clean_tune", "load_tunes", "join_tunes"]

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth")
"""music21's corpus folders of ABC folk tunes (Essen, O'Neill's 1850 melodies, Ryan's Mammoth)."""

UNKNOWN = "\N{REPLACEMENT CHARACTER}"
"""The symbol that stands for every character outside a vocabulary."""

_FIELD = re.compile(r"^([A-Za-z]):")           # a header or body field line, such as "T: title"
_REFERENCE = re.compile(r"^\s*X:")             # the line that starts a tune


class MalformedTune(ValueError):
    """A tune that cannot be used; ``reason`` says why in a few words (used to count them)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Tune:
    """One tune: where it comes from and its text (``M:``, ``L:``, ``K:`` lines, then the body).

    ``text`` ends with a newline; ``source`` is the file inside music21's corpus
    (``"oneills1850/0001-0050.abc"``) and ``number`` the tune's ``X:`` reference number.
    """

    collection: str
    source: str
    number: int
    text: str

    @property
    def header(self) -> str:
        """The three header lines, up to and including the ``K:`` line."""
        return "".join(self.text.splitlines(keepends=True)[:3])

    @property
    def body(self) -> str:
        """The notes: every line after the ``K:`` line."""
        return "".join(self.text.splitlines(keepends=True)[3:])


class CharVocabulary:
    """Characters and their indices, with :data:`UNKNOWN` at index 0 for everything else.

    Built from training text with :meth:`from_texts`; ``encode`` maps a string to an
    int64 array of indices (unknown characters to 0), ``decode`` maps indices back.
    """

    def __init__(self, characters):
        symbols = [UNKNOWN] + sorted(set(characters) - {UNKNOWN})
        self.symbols = tuple(symbols)
        self.index = {c: i for i, c in enumerate(symbols)}

    @classmethod
    def from_texts(cls, texts, min_count: int = 1) -> "CharVocabulary":
        """The characters that occur at least ``min_count`` times in ``texts``."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        counts = Counter()
        for text in texts:
            counts.update(text)
        return cls(c for c, n in counts.items() if n >= min_count)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, character) -> bool:
        return character in self.index

    def __repr__(self) -> str:
        return f"CharVocabulary({len(self)} symbols)"

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocabulary) and self.symbols == other.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def encode(self, text: str) -> np.ndarray:
        """Indices of the characters of ``text``, shape ``(len(text),)``, int64."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return np.fromiter((self.index.get(c, 0) for c in text), dtype=np.int64, count=len(text))

    def decode(self, indices) -> str:
        """The string of the symbols at ``indices`` (any iterable of ints, a tensor or an array)."""
        values = np.asarray(indices).reshape(-1)
        if values.size and (values.min() < 0 or values.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}); got values from {values.min()} to {values.max()}")
        return "".join(self.symbols[int(i)] for i in values)


@dataclass(frozen=True)
class ABCCorpus:
    """The tunes split three ways, the vocabulary of the training split, and what was left out.

    ``skipped`` counts the tunes left out, by reason; ``duplicates`` counts tunes whose
    text (white space aside) was already kept.
    """

    train: tuple
    valid: tuple
    test: tuple
    vocabulary: CharVocabulary
    skipped: dict = field(default_factory=dict)
    duplicates: int = 0

    def split(self, name: str) -> tuple:
        """The tunes of split ``name``: "train", "valid" or "test"."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)


# --- reading music21's files --------------------------------------------------------------


def collection_paths(collection: str) -> list:
    """The ABC files of one of :data:`COLLECTIONS` inside music21's corpus, sorted by name."""
    if collection not in COLLECTIONS:
        raise ValueError(f"collection must be one of {COLLECTIONS}, got {collection!r}")
    paths = [Path(p) for p in corpus.getCorePaths(fileExtensions=("abc",)) if Path(p).parent.name == collection]
    if not paths:
        raise FileNotFoundError(f"music21's corpus has no ABC files in {collection}/: is music21 installed in full?")
    return sorted(paths)


def raw_tunes(text: str):
    """``(number, lines)`` for each tune of an ABC file's text: from an ``X:`` line to the next one.

    This is how :meth:`music21.abcFormat.ABCFile.extractReferenceNumber` delimits a
    tune, done for every tune in one pass. Lines before the first ``X:`` are ignored;
    a reference number that is not an integer becomes -1.
    """
    number, lines = None, []
    for line in text.splitlines():
        if _REFERENCE.match(line):
            if number is not None:
                yield number, lines
            digits = line.split(":", 1)[1].strip()
            number, lines = (int(digits) if digits.isdigit() else -1), [line]
        elif number is not None:
            lines.append(line)
    if number is not None:
        yield number, lines


def _strip_comment(line: str) -> str:
    """The line without its ``%`` comment (``\\%`` is an escaped percent sign, kept)."""
    return re.split(r"(?<!\\)%", line, maxsplit=1)[0].rstrip()


def _is_field(line: str) -> bool:
    """True for a field line (``T:...``, ``w:...``) by music21's own test, which spares ``A:|`` bars."""
    padded = line + "  "
    return abcFormat.ABCHandler.startsMetadata(padded[0], padded[1], padded[2]) or (
        bool(_FIELD.match(line)) and padded[2] != "|")


def clean_tune(lines) -> str:
    """The text of one tune kept for modelling: its ``M:``, ``L:`` and ``K:`` lines, then the body.

    ``lines`` are the tune's lines from its ``X:`` line on (as :func:`raw_tunes` gives
    them). The header runs to the ``K:`` line; the body from there to the first empty
    line. Other header fields, body fields other than ``K:``, ``M:`` and ``L:`` (a change
    of key, meter or unit length inside the tune), lyrics and comments are dropped. A
    tune without ``L:`` gets the unit length that the ABC standard derives from its
    meter (music21's :meth:`~music21.abcFormat.ABCMetadata.getDefaultQuarterLength`).
    Raises :class:`MalformedTune` when the tune cannot be used.
    """
    header, body, in_body = {}, [], False
    for raw in list(lines)[1:]:
        line = _strip_comment(raw)
        if not in_body:
            if not raw.strip():
                continue
            if not line:
                continue
            if not _is_field(line):
                raise MalformedTune("music before the K: line", line[:40])
            tag = line[0]
            if tag in "MLK":
                if tag in header:
                    raise MalformedTune(f"two {tag}: lines in the header")
                header[tag] = line[2:].strip()
            in_body = tag == "K"
        else:
            if not raw.strip():
                break
            if not line:
                continue
            if _is_field(line):
                if line[0] in "MLK" and line[1] == ":":
                    body.append(line[0] + ":" + line[2:].strip())
                continue
            body.append(line)
    if not in_body:
        raise MalformedTune("no K: line")
    if not header.get("K"):
        raise MalformedTune("an empty K: line")
    if not header.get("M"):
        raise MalformedTune("no M: line")
    if not body:
        raise MalformedTune("no body")
    if not header.get("L"):
        meter = abcFormat.ABCMetadata(f"M:{header['M']}")
        meter.preParse()
        try:
            quarters = meter.getDefaultQuarterLength()
        except Exception as exc:  # music21 raises several kinds on a meter it cannot read
            raise MalformedTune("music21 cannot read it", f"M:{header['M']} ({type(exc).__name__})") from None
        header["L"] = {0.25: "1/16", 0.5: "1/8"}[quarters]
    text = f"M:{header['M']}\nL:{header['L']}\nK:{header['K']}\n" + "\n".join(body) + "\n"
    _check_with_music21(text)
    return text


def _check_with_music21(text: str) -> None:
    """Raise :class:`MalformedTune` unless music21 tokenises ``text``, reads its header and finds a note."""
    handler = abcFormat.ABCHandler()
    try:
        handler.tokenize(text)
        notes = 0
        for token in handler.tokens:
            if isinstance(token, abcFormat.ABCMetadata):
                token.preParse()
                if token.tag == "M":
                    token.getTimeSignatureParameters()
                elif token.tag == "L":
                    token.getDefaultQuarterLength()
                elif token.tag == "K":
                    token.getKeySignatureParameters()
            elif isinstance(token, abcFormat.ABCNote) and not token.src.strip().startswith(("z", "x")):
                notes += 1
    except Exception as exc:  # music21 raises many kinds (ABCTokenException, ValueError, ...)
        raise MalformedTune("music21 cannot read it", type(exc).__name__) from None
    if notes == 0:
        raise MalformedTune("no note")


# --- the corpus -------------------------------------------------------------------------


def _dedup_key(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _split_of(key: str, valid_fraction: float, test_fraction: float) -> str:
    """"train", "valid" or "test" for a tune, from a hash of its text (the same on every machine)."""
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2 ** 64
    if value < test_fraction:
        return "test"
    if value < test_fraction + valid_fraction:
        return "valid"
    return "train"


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
        raise ValueError(f"{name} must be a number in (0, 0.5), got {value!r}")


def load_tunes(collections=COLLECTIONS, *, valid_fraction: float = 0.05, test_fraction: float = 0.05,
               min_count: int = 10) -> ABCCorpus:
    """The tunes of ``collections`` split into train / valid / test, with a vocabulary.

    ``valid_fraction`` and ``test_fraction`` are the expected shares of distinct tunes in
    the validation and test splits (each tune is placed by a hash of its text, so the
    shares come out close to these, not exact). The vocabulary holds the characters that
    occur at least ``min_count`` times in the training split; rarer ones become
    :data:`UNKNOWN`. Deterministic: the same music21 version gives the same corpus.
    """
    if isinstance(collections, str):
        collections = (collections,)
    collections = tuple(collections)
    if not collections:
        raise ValueError("collections must name at least one of " + ", ".join(COLLECTIONS))
    _check_fraction("valid_fraction", valid_fraction)
    _check_fraction("test_fraction", test_fraction)
    splits = {"train": [], "valid": [], "test": []}
    skipped, seen, duplicates = Counter(), set(), 0
    for collection in collections:
        for path in collection_paths(collection):
            source = f"{collection}/{path.name}"
            for number, lines in raw_tunes(path.read_text(encoding="utf-8")):
                try:
                    text = clean_tune(lines)
                except MalformedTune as exc:
                    skipped[exc.reason] += 1
                    continue
                key = _dedup_key(text)
                if key in seen:
                    duplicates += 1
                    continue
                seen.add(key)
                splits[_split_of(key, valid_fraction, test_fraction)].append(Tune(collection, source, number, text))
    vocabulary = CharVocabulary.from_texts((t.text for t in splits["train"]), min_count=min_count)
    return ABCCorpus(tuple(splits["train"]), tuple(splits["valid"]), tuple(splits["test"]), vocabulary,
                     dict(skipped), duplicates)


def join_tunes(tunes) -> str:
    """The tunes as one stream of text, each followed by an empty line (the ABC separator)."""
    return "".join(t.text + "\n" for t in tunes)
