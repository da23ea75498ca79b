"""Course tooling for maintainers and instructors -- not imported by the lessons.

- ``tools.labtool``   -- builds ``labs/`` from ``notebooks/`` (``python -m tools.labtool``)
- ``tools.notebooks`` -- executes notebooks headless and keeps them canonical
  (``python -m tools.notebooks run|fmt``)
- ``tools.results``   -- gathers every notebook's headline figures into ``docs/results.md``
  (``python -m tools.results``)
- ``tools.files``     -- atomic writes: a file the tools rewrite is either the old one or
  the new one, never half of each
- ``tools.grade``     -- grades learners' submitted labs headless (``make grade``), with
  ``tools.grade_run`` (one submission in a confined kernel), ``tools.grade_sandbox`` (the
  kernel's side) and ``tools.grade_selftest`` (fixtures made from the labs, ``make grade-selftest``)

The lesson helpers the notebooks import live in ``utils/``; ``make help`` lists the
commands built on these modules.
"""
