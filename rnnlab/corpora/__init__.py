"""Real data for the book, read offline from the corpus that ships inside music21's wheel.

Nothing here downloads: every loader reads the files of the pinned ``music21`` package
(``music21.corpus``) and splits them deterministically by piece.
"""

from . import chorales  # Bach chorales as piano rolls
from . import abc  # folk tunes in ABC notation
