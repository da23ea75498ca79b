"""Course tooling for maintainers and instructors -- not imported by the lessons.

- ``tools.labtool``   -- builds ``labs/`` from ``notebooks/`` (``python -m tools.labtool``)
- ``tools.notebooks`` -- executes notebooks headless and keeps them canonical
  (``python -m tools.notebooks run|fmt``)
- ``tools.results``   -- gathers every notebook's headline figures into ``docs/results.md``
  (``python -m tools.results``)
- ``tools.files``     -- atomic writes: a file the tools rewrite is either the old one or
  the new one, never half of each

The lesson helpers the notebooks import live in ``utils/``; ``make help`` lists the
commands built on these modules.
"""
