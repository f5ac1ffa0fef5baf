"""Make rnnlab/corpora/data/chorales.{npz,json}: the Bach chorales of music21's corpus as
piano rolls, with their train/valid/test split (see rnnlab/corpora/chorales.py).

    python tools/make_chorales.py            # parses ~410 scores, over a minute

The output depends only on the pinned music21 (its bundled corpus); nothing is
downloaded. tests/test_chorales.py rebuilds the rolls (marked slow) and compares their
digest with the shipped file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnlab.corpora import chorales  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=chorales.DATA, help="folder to write into")
    parser.add_argument("--quiet", action="store_true", help="do not list the scores as they are parsed")
    args = parser.parse_args(argv)
    corpus = chorales.build(progress=not args.quiet)
    npz, record = chorales.save(corpus, args.out)
    counts = {s: len(corpus.paths(s)) for s in chorales.SPLITS}
    print(f"wrote {npz} and {record}: {counts}, {len(corpus.excluded)} files excluded, "
          f"digest {corpus.digest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
