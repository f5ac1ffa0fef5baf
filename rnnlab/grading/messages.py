"""The lines of a check's message that the instructor's report reads.

A failed check (in the student's kernel) writes them; the grading command's report
(in the instructor's process) counts them over the class. Both sides import them from
here, and this module imports nothing, so the command never loads the checks' world
(torch, numpy) to read a message.
"""

NAMED_MISTAKE = "The mistake: "              # names a usual mistake; the report counts them over the class
FROM_EARLIER = "The loop itself is right: "   # the error is an earlier function's, counted in its own test


def named(mistake_text: str) -> str:
    """The line of a message that names a usual mistake: ``"The mistake: " + mistake_text``."""
    return NAMED_MISTAKE + mistake_text
