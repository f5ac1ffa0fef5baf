"""What a gradebook holds, read through nbgrader's own API, for comparing two gradebooks.

``gradebook_state(url, course_id, assignment)`` works on any database nbgrader reads
(an SQLite file or a PostgreSQL server): two gradebooks with equal states hold the same
rows in every table and the same scores in every graded cell.
"""

from __future__ import annotations

from sqlalchemy import func, select


def gradebook_state(url: str, course_id: str, assignment: str) -> dict:
    """Every table's row count, and each graded cell's scores per student, in the gradebook at ``url``."""
    from nbgrader.api import Base, Gradebook

    with Gradebook(url, course_id) as gradebook:
        counts = {table.name: gradebook.db.execute(select(func.count()).select_from(table)).scalar()
                  for table in Base.metadata.sorted_tables}
        grades = {(submission.student.id, grade.name): (grade.auto_score, grade.manual_score, grade.needs_manual_grade)
                  for submission in gradebook.find_assignment(assignment).submissions
                  for notebook in submission.notebooks for grade in notebook.grades}
    return {"counts": counts, "grades": grades}
