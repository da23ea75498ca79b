"""Hints guide without giving the code away.

Every TODO is announced in markdown (``**TODO n.**``: what to compute and why) and followed
by progressive hints in collapsible blocks (``<details><summary>Hint 1</summary>...``): the
idea first, then which API to look up. The stub the lab shows (``# TODO n: ...``) comes from
the solution marker's hint. None of these may restate the solution: each has a difflib
ratio below 0.5 to the TODO's solution region and contains none of its lines.
"""

from __future__ import annotations

import difflib
import re

import nbformat
import pytest

from tools import labtool
from utils import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ANNOUNCE = re.compile(r"\*\*TODO (\d+)\b")
DETAILS = re.compile(r"<details>\s*<summary>(?P<summary>.*?)</summary>(?P<body>.*?)</details>", re.S)
MAX_RATIO = 0.5


def normalize(text: str) -> str:
    """Whitespace collapsed, markdown code ticks dropped: the text a reader could copy."""
    return re.sub(r"\s+", " ", text.replace("`", "")).strip()


def significant_lines(solution: str) -> list[str]:
    """Solution lines worth protecting: not blank, not a comment, not bare punctuation
    (``)``, ``],``), at least 10 characters once whitespace is collapsed."""
    lines = []
    for line in solution.splitlines():
        text = normalize(line)
        if len(text) >= 10 and not text.startswith("#") and re.search(r"\w", text):
            lines.append(text)
    return lines


def hints_by_todo(nb) -> dict[int, dict[str, list[str]]]:
    """For each announced TODO: its announcement paragraph and its hint blocks."""
    found: dict[int, dict[str, list[str]]] = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        parts = ANNOUNCE.split(cell.source)
        # parts = [before, n1, text1, n2, text2, ...]; "**TODO 3** and **TODO 4.**" shares its text
        pending: list[int] = []
        for number, text in zip(parts[1::2], parts[2::2]):
            pending.append(int(number))
            if not text.strip() or re.fullmatch(r"\*\*\s*and\s*", text.strip()):
                continue
            announcement = DETAILS.split(text)[0]
            blocks = [f"{m['summary']}: {m['body']}" for m in DETAILS.finditer(text)]
            for n in pending:
                entry = found.setdefault(n, {"announcement": [], "hints": []})
                entry["announcement"].append(announcement)
                entry["hints"].extend(blocks)
            pending = []
    return found


def todos(path):
    nb = nbformat.read(path, as_version=4)
    _, found = labtool.make_lab(nb, path.name)
    return nb, found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_todo_has_progressive_hints(path):
    nb, found = todos(path)
    hints = hints_by_todo(nb)
    for todo in found:
        assert todo.number in hints, f"TODO {todo.number} is not announced in markdown (**TODO {todo.number}.**)"
        blocks = hints[todo.number]["hints"]
        assert blocks, f"TODO {todo.number} has no <details><summary>Hint 1</summary>...</details> block"
        summaries = [b.split(":", 1)[0].strip() for b in blocks]
        assert summaries[0] == "Hint 1", f"TODO {todo.number}: the first hint block is {summaries[0]!r}, expected 'Hint 1'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_hint_restates_the_solution(path):
    nb, found = todos(path)
    hints = hints_by_todo(nb)
    problems = []
    for todo in found:
        texts = [("stub", todo.hint)]
        entry = hints.get(todo.number, {"announcement": [], "hints": []})
        texts += [("announcement", t) for t in entry["announcement"]]
        texts += [(f"hint {i}", t) for i, t in enumerate(entry["hints"], start=1)]
        solution = normalize(todo.solution)
        lines = significant_lines(todo.solution)
        for label, text in texts:
            text = normalize(text)
            ratio = difflib.SequenceMatcher(None, text, solution, autojunk=False).ratio()
            if ratio >= MAX_RATIO:
                problems.append(f"TODO {todo.number} {label}: ratio {ratio:.2f} to the solution: {text[:90]!r}")
            for line in lines:
                if line in text:
                    problems.append(f"TODO {todo.number} {label} contains the solution line {line!r}")
    assert not problems, "\n".join(problems)


def test_the_measure_catches_a_hint_that_gives_the_code_away():
    solution = "    c = tf.add(a, b)\n    d = tf.subtract(b, 1)\n    e = tf.multiply(c, d)\n    return e"
    giveaway = "compute c = tf.add(a, b), d = tf.subtract(b, 1) and e = tf.multiply(c, d), and return e"
    guide = "Follow the three equations above in order; each needs one TensorFlow operation."
    assert difflib.SequenceMatcher(None, normalize(giveaway), normalize(solution), autojunk=False).ratio() >= MAX_RATIO
    assert any(line in normalize(giveaway) for line in significant_lines(solution))
    assert difflib.SequenceMatcher(None, normalize(guide), normalize(solution), autojunk=False).ratio() < MAX_RATIO
    assert not any(line in normalize(guide) for line in significant_lines(solution))


def test_hint_blocks_are_found_per_todo():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "**TODO 3** and **TODO 4.** Split and merge.\n\n<details><summary>Hint 1</summary>reshape first</details>\n\n"
        "**TODO 5.** Encode.\n<details><summary>Hint 1</summary>angles</details>"
        "<details><summary>Hint 2</summary>np.sin</details>")])
    found = hints_by_todo(nb)
    assert found[3]["hints"] == found[4]["hints"] == ["Hint 1: reshape first"]
    assert found[5]["hints"] == ["Hint 1: angles", "Hint 2: np.sin"]
    assert "Split and merge." in found[3]["announcement"][0]
