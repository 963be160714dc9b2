"""Files of several label sets' students (`student.populations: per_image_set`).

One grouped job trains every label set an experiment compares on one image set as one population and
writes {"label_sets": [result, ...]} (students.run_evaluate_students; a group of one writes that set's
result as it is); one local job per label set then takes its result out, so figures read the same
per-label-set files in either mode. Plain Python, no torch: those jobs start in a tenth of a second.
"""

from __future__ import annotations

import os

from labelworth import io
from labelworth.errors import LabelworthError


def population_member(population_path: str | os.PathLike, label_spec: str, out_path: str | os.PathLike) -> dict:
    """Write and return the result of `label_spec` from a population file: the file that a job for
    that label set alone would have written (to within float rounding)."""
    population = io.read_json(population_path)
    # A group of one label set trains it alone, and the file is that set's result.
    for result in population.get("label_sets", [population]):
        if result["meta"]["label_spec"] == label_spec:
            io.write_json(out_path, result)
            return result
    raise LabelworthError(f"{population_path} holds no students trained on {label_spec}")
