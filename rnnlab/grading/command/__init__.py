"""The hardened grading command: runs in the instructor's process, around the student's kernel.

``python -m rnnlab.grading autograde|feedback <assignment>`` (:mod:`.cli`) and the nbgrader
preprocessors that ``nbgrader_config.py`` adds to the plain nbgrader commands
(:mod:`.preprocessors`). Nothing here imports the in-kernel checks
(:mod:`rnnlab.grading.checks`) except the message format they share
(:mod:`rnnlab.grading.messages`); the checks run in the grading process only inside the
test cells that the isolated re-check (:mod:`.recheck`) executes there.

This file imports nothing: import the module you need.
"""
