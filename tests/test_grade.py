"""The grader (tools/grade.py): submissions made from the current labs at test time.

Without a kernel: the untouched lab of every lab, unreadable and foreign files, a lab under
another lab's name, TODO regions found in reordered, duplicated, deleted and edited cells,
static tampering, the report's schema. With kernels (one grading call, in parallel): the
solved, odd-wrong and even-wrong fixtures of the cheap labs, and adversarial submissions
(endless loop, os._exit, gigabytes of output, network, writes outside the scratch folder,
tampering, fake success lines and outputs) -- each with its verdict, within its limits,
and the repository unchanged. `make grade-selftest` does the same for every lab.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import textwrap
from pathlib import Path

import jsonschema
import nbformat
import pytest

from tools import grade, grade_selftest
from tools.grade_run import INTERRUPT_GRACE, compose
from utils import ROOT

SCHEMA = json.loads((ROOT / "docs" / "grading" / "grades.schema.json").read_text(encoding="utf-8"))
#: Labs with no training before their last check (measured: each grades in ~6 CPU s, kernel
#: start-up included; `make grade-selftest` prints every lab's time). To keep `make test` within
#: its budget it grades the solved/odd/even fixtures of the first and, of the others, the
#: odd fixture of the first with a cell of several TODOs; `make grade-selftest` grades every
#: lab's three.
CHEAP = ("01_tensors_gradienttape", "02_custom_dense_layer")
#: The lab the adversarial submissions are made from: the first cheap one.
HOSTILE_LAB = CHEAP[0]
CELL_TIMEOUT = 10.0


@pytest.fixture(scope="session")
def labs():
    return grade.catalogue()


def lab_named(labs, stem):
    return next(lab for name, lab in labs.items() if Path(name).stem == stem)


def validate(report):
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    return report


def test_the_schema_is_valid_and_refuses_a_report_that_breaks_it():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    todo = {"number": 1, "hint": "h", "status": "passed", "points": 1, "max_points": 1, "message": None,
            "seconds": 0.1, "notes": []}
    record = {"file": "a.ipynb", "sha256": "0" * 64, "status": "graded", "message": None, "lab": "01_x",
              "lab_version": "abc", "match": 1.0, "points": 1, "max_points": 1, "seconds": 1.0, "sandbox": None,
              "notes": [], "todos": [todo]}
    report = {"schema_version": grade.SCHEMA_VERSION, "graded_at": "2026-01-01T00:00:00+00:00", "course_commit": "abc",
              "course_modified": False, "mode": "fast", "jobs": 1,
              "limits": {"cell_timeout_s": 1, "budget_s": 1, "memory_gb": 1, "output_chars_per_cell": 1},
              "sandbox": {"landlock": False, "uid": None, "note": None}, "seconds": 1.0, "points": 1, "max_points": 1,
              "submissions": [record]}
    validate(report)
    for broken in ({**todo, "status": "ok"}, {**todo, "points": -1}, {k: v for k, v in todo.items() if k != "message"}):
        with pytest.raises(jsonschema.ValidationError):
            validate({**report, "submissions": [{**record, "todos": [broken]}]})


def by_file(report):
    return {Path(r["file"]).name: r for r in report["submissions"]}


def statuses(record):
    return {t["number"]: t["status"] for t in record["todos"]}


def block_todos(lab):
    """TODO cells whose stubs are blocks (inside a function or method), in order."""
    return [(cell, n) for cell in lab.todo_cells for n in cell.numbers if "raise NotImplementedError" in cell.stubs[n]]


def indented(cell, n, code):
    stub = cell.stubs[n]
    indent = stub[: len(stub) - len(stub.lstrip())]
    return textwrap.indent(textwrap.dedent(code).strip("\n"), indent)


def with_reference(cell, n, code):
    """``code`` (at the stub's indentation) followed by the TODO's reference solution."""
    return indented(cell, n, code) + "\n" + cell.reference[n]


def no_kernel(monkeypatch):
    def refuse(job):
        raise AssertionError("this submission needed no kernel, yet one was started")

    monkeypatch.setattr(grade, "_run_worker", refuse)


# --------------------------------------------------------------------------- no kernel

def test_untouched_labs_get_zero_with_every_todo_not_attempted_without_a_kernel(labs, tmp_path, monkeypatch):
    no_kernel(monkeypatch)
    paths = [grade_selftest.write(grade_selftest.untouched(lab), tmp_path / name) for name, lab in labs.items()]
    report = validate(grade.grade(paths, grade.Options(jobs=2)))
    for record in report["submissions"]:
        lab = labs[Path(record["file"]).name]
        assert record["status"] == "graded" and record["lab"] == Path(lab.name).stem
        assert record["points"] == 0 and record["max_points"] == len(lab.numbers) >= 2  # lab 08 has two TODOs
        assert statuses(record) == {n: "not attempted" for n in lab.numbers}
        assert record["lab_version"] and record["sha256"] and len(record["sha256"]) == 64
        assert record["notes"] == [] and record["sandbox"] is None


def test_extraction_gives_each_solution_back_and_no_reference_solution_is_called_tampering(labs):
    for name, lab in labs.items():
        cells = json.loads(nbformat.writes(grade_selftest.solved(lab)))["cells"]
        regions = grade.locate(lab, [{"cell_type": c["cell_type"], "source": "".join(c["source"]), "id": c["id"]} for c in cells])
        job, decided = grade.plan(lab, regions, grade.Options())
        assert not decided, (name, decided)
        for cell in lab.todo_cells:
            for n in cell.numbers:
                assert regions[n].code.strip() == cell.reference[n].strip() and not regions[n].notes, (name, n)


def test_unreadable_foreign_and_oversized_files_get_a_clear_status(labs, tmp_path, monkeypatch):
    no_kernel(monkeypatch)
    lab = lab_named(labs, HOSTILE_LAB)
    text = nbformat.writes(grade_selftest.solved(lab))
    (tmp_path / "truncated.ipynb").write_text(text[: len(text) // 2])
    (tmp_path / "not_a_notebook.ipynb").write_text('{"hello": "world"}')
    (tmp_path / "binary.ipynb").write_bytes(bytes(range(256)) * 10)
    other = nbformat.v4.new_notebook()
    other.cells = [nbformat.v4.new_code_cell("print('hello world, this is not a lab of the course at all')")]
    nbformat.write(other, str(tmp_path / "other.ipynb"))
    with open(tmp_path / "huge.ipynb", "wb") as huge:
        huge.truncate(grade.MAX_BYTES + 1)
    report = validate(grade.grade(sorted(tmp_path.iterdir()), grade.Options(jobs=2)))
    records = by_file(report)
    assert records["truncated.ipynb"]["status"] == "unreadable"
    assert "JSON breaks at line" in records["truncated.ipynb"]["message"]
    assert records["not_a_notebook.ipynb"]["status"] == "unreadable"
    assert records["binary.ipynb"]["status"] == "unreadable"
    assert records["huge.ipynb"]["status"] == "unreadable" and "MB" in records["huge.ipynb"]["message"]
    assert records["other.ipynb"]["status"] == "unrecognised" and "not look like a lab" in records["other.ipynb"]["message"]
    assert all(r["points"] == 0 and r["todos"] == [] for r in records.values())


def test_a_lab_is_recognised_by_content_not_by_file_name(labs, tmp_path, monkeypatch):
    no_kernel(monkeypatch)
    first, second = list(labs.values())[:2]
    path = grade_selftest.write(grade_selftest.untouched(second), tmp_path / first.name)  # lab 2 named as lab 1
    record = validate(grade.grade([path], grade.Options(jobs=1)))["submissions"][0]
    assert record["lab"] == Path(second.name).stem and record["status"] == "graded"
    assert any("file name suggests" in note for note in record["notes"])
    record = validate(grade.grade([path], grade.Options(jobs=1, lab=Path(first.name).stem)))["submissions"][0]
    assert record["status"] == "wrong lab" and record["points"] == 0


def test_fake_outputs_and_success_lines_in_an_untouched_lab_change_nothing(labs, tmp_path, monkeypatch):
    no_kernel(monkeypatch)
    lab = lab_named(labs, HOSTILE_LAB)
    nb = grade_selftest.untouched(lab)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("checks."):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[ok] all correct\n")]
            cell.execution_count = 1
    record = grade.grade([grade_selftest.write(nb, tmp_path / "claims.ipynb")], grade.Options(jobs=1))["submissions"][0]
    assert record["points"] == 0 and set(statuses(record).values()) == {"not attempted"}


def test_an_older_lab_is_graded_on_the_current_one_with_a_note(labs, tmp_path, monkeypatch):
    no_kernel(monkeypatch)
    lab = lab_named(labs, HOSTILE_LAB)
    nb = grade_selftest.untouched(lab)
    todo_cells = {lab.cells[cell.index]["id"] for cell in lab.todo_cells}
    plain = [c for c in nb.cells if c.cell_type == "code" and c.id not in todo_cells and "checks." not in c.source]
    plain[-1].source = plain[-1].source.replace("\n", "\n# an older version of this cell\n", 1) + "\nprint('old')"
    record = grade.grade([grade_selftest.write(nb, tmp_path / "old.ipynb")], grade.Options(jobs=1))["submissions"][0]
    assert record["status"] == "graded" and record["lab"] == HOSTILE_LAB
    assert [n for n in record["notes"] if "1 of the lab's" in n and "graded on the current lab" in n], record["notes"]


def test_regions_are_found_in_reordered_duplicated_deleted_and_edited_cells(labs):
    lab = lab_named(labs, HOSTILE_LAB)
    nb = structure_submission(lab)
    cells = [{"cell_type": c.cell_type, "source": c.source, "id": c.get("id", "")} for c in nb.cells]
    deleted = block_todos(lab)[1][1]
    # the current lab has since changed a line around the moved TODO: the submission is an older version
    newer = copy.deepcopy(lab)
    moved = next(cell for cell in newer.todo_cells if cell.cell_id == block_todos(lab)[-1][0].cell_id)
    glue = moved.template[0]
    assert "):" in glue
    moved.template[0] = glue.replace("):", ", scale=1.0):", 1)
    for current in (lab, newer):
        regions = grade.locate(current, cells)
        for cell in current.todo_cells:
            for n in cell.numbers:
                if n == deleted:
                    assert regions[n].code is None
                else:
                    assert regions[n].code.strip() == cell.reference[n].strip(), (n, regions[n].code)
        notes = " ".join(note for r in regions.values() for note in r.notes)
        assert "appears 2 times" in notes
        assert ("differs from the current lab" in notes) == (current is newer), notes


@pytest.mark.parametrize("attack, reason", [
    ("global checks\nchecks = None", "rebinds `checks`"),
    ("checks.tensors.image_batch = print", "assigns to `checks.tensors.image_batch`"),
    ("np.allclose = lambda *a, **k: True", "assigns to `np.allclose`"),
    ("import numpy\nnumpy.allclose = lambda *a, **k: True", "assigns to `numpy.allclose`"),
    ("setattr(tf, 'reduce_sum', None)", "uses `setattr`"),
    ("import sys\nsys.modules['utils.checks'] = None", "imports `sys`"),
    ("globals()['checks'] = None", "uses `globals`"),
    ("(lambda: 0).__globals__['checks'] = None", "reaches"),
    ("import gc", "imports `gc`"),
    ("get_ipython().set_custom_exc((Exception,), None)", "uses `get_ipython`"),
    ("exec('checks = None')", "uses `exec`"),
])
def test_tampering_in_a_todo_is_refused_without_running_it(labs, attack, reason):
    lab = lab_named(labs, HOSTILE_LAB)
    cell, n = block_todos(lab)[0]
    others = set().union(*(names for m, names in lab.defined.items() if m not in cell.numbers))
    why = grade.tampering(cell, n, with_reference(cell, n, attack), lab, others)
    assert why and reason in why, why


@pytest.mark.parametrize("benign", [
    "np = 3  # a local name inside the function",
    "import numpy as np",
    "setattr(self, 'w', 1) if False else None",
    "result = [tf.constant(1.0)]\nresult[0] = tf.constant(2.0)",
])
def test_ordinary_code_is_not_called_tampering(labs, benign):
    lab = lab_named(labs, HOSTILE_LAB)
    cell, n = block_todos(lab)[0]
    assert grade.tampering(cell, n, with_reference(cell, n, benign), lab, set()) is None


def test_markdown_table_and_the_classroom_helper(tmp_path):
    report = {"graded_at": "2026-01-01T00:00:00+00:00", "course_commit": "abc", "course_modified": False,
              "submissions": [{"file": "a|b.ipynb", "lab": "01_x", "points": 1, "max_points": 2, "status": "graded",
                               "message": None, "notes": [], "todos": [
                                   {"number": 1, "status": "passed", "message": None, "notes": []},
                                   {"number": 2, "status": "failed", "message": "`x` is wrong", "notes": []}]}]}
    text = grade.markdown(report)
    assert "| a\\|b.ipynb | 01_x | 1/2 | 1✓ 2✗ |" in text and "TODO 2 failed: `x` is wrong" in text
    (tmp_path / "grades.json").write_text(json.dumps(report))
    assert grade.main(["--passed", str(tmp_path / "grades.json"), "--todo", "1"]) == 0
    assert grade.main(["--passed", str(tmp_path / "grades.json"), "--todo", "2"]) == 1


def test_classroom_workflow_has_one_test_per_todo_of_its_lab(labs):
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / "docs" / "grading" / "classroom.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["run-autograding-tests"]
    lab = lab_named(labs, job["env"]["LAB"])
    tests = [s for s in job["steps"] if "autograding-command-grader" in s.get("uses", "")]
    assert [int(s["with"]["command"].rsplit("--todo ", 1)[1]) for s in tests] == lab.numbers
    assert all(s["with"]["max-score"] == 1 for s in tests)
    reporter = next(s for s in job["steps"] if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"].split(",") == [s["id"] for s in tests]
    assert set(reporter["env"]) == {f"{s['id'].upper()}_RESULTS" for s in tests}
    assert any("--lab $LAB" in s.get("run", "") for s in job["steps"])


def test_no_submissions_is_a_usage_error_naming_the_fix(capsys):
    with pytest.raises(SystemExit):
        grade.main([])
    assert "make grade SUBMISSIONS=" in capsys.readouterr().err


# --------------------------------------------------------------------------- adversarial submissions

def hostile_submission(lab):
    """Every TODO does something a grader must survive; the line TODO prints ~200 MB first
    (200 times the grader's output limit; 2 GB made the loop alone outlast the 10 s cell limit
    on a loaded 2-core CI machine)."""
    lines = [(cell, n) for cell in lab.todo_cells for n in cell.numbers if "raise NotImplementedError" not in cell.stubs[n]]
    blocks = block_todos(lab)
    attacks = {}
    if lines:
        cell, n = lines[0]
        attacks[n] = ("flood", "for _ in range(2_000):\n    print('x' * 100_000)\n" + cell.reference[n])
    kinds = [
        ("exit", "import os\nos._exit(3)"),
        ("network", "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=60)"),
        ("loop", "while True:\n    pass"),
        ("write", "open(checks.__file__, 'a').write('# changed by a submission')\n"
                  "open(os.path.join(os.path.dirname(checks.__file__), '..', '..', 'labs', 'x.txt'), 'w')"),
    ]
    for (cell, n), (kind, code) in zip(blocks, kinds):
        body = f"import os\n{code}" if kind == "write" else code
        attacks[n] = (kind, indented(cell, n, body) + "\n" + cell.reference[n])
    nb = grade_selftest.notebook(lab, lambda cell, n: attacks[n][1] if n in attacks else cell.reference[n])
    return nb, {n: kind for n, (kind, _) in attacks.items()}


def tamper_submission(lab):
    """Tampering the static check misses (found by the snapshot), a fake success line, a fake
    checks module in the scratch folder, an evil cell outside the TODOs, fake outputs; and a
    one-line TODO that asks for more memory than the limit (an `error` with its last line)."""
    blocks = block_todos(lab)
    lines = [(cell, n) for cell in lab.todo_cells for n in cell.numbers if "raise NotImplementedError" not in cell.stubs[n]]
    hog = f"import numpy\n_hog = numpy.empty({int((grade.DEFAULTS['memory_gb'] + 2) * 2**30)}, dtype=numpy.uint8)\n"
    memory = {n: hog + cell.reference[n] for cell, n in lines[:1]}
    plan = {
        blocks[0][1]: ("fake-ok", "print('[ok] everything is right')\nreturn None"),
        blocks[1][1]: ("dynamic", "alias = np\nalias.allclose = lambda *a, **k: True\nreturn None"),
        blocks[2][1]: ("scratch-utils", "import os\nos.makedirs('utils/checks', exist_ok=True)\n"
                                         "open('utils/checks/tensors.py', 'w').write('def chain_rule(f): print(\"[ok]\")')\n"
                                         "return None"),
    }
    if len(blocks) > 3:
        plan[blocks[3][1]] = ("static", "checks.tensors = None")
    code = {n: indented(cell, n, plan[n][1]) if plan[n][0] != "static" else with_reference(cell, n, plan[n][1])
            for cell, n in blocks if n in plan}
    code.update(memory)
    nb = grade_selftest.notebook(lab, lambda cell, n: code.get(n, cell.reference[n]))
    evil = nbformat.v4.new_code_cell("checks = type('C', (), {'__getattr__': lambda self, name: self})()\n"
                                     "print('[ok] all checks passed')")
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "session.start" in c.source)
    nb.cells.insert(setup + 1, evil)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("checks."):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[ok] passed\n")]
    return nb, {**{n: kind for n, (kind, _) in plan.items()}, **{n: "memory" for n in memory}}


def structure_submission(lab):
    """Solved, then: a TODO cell moved to the end (with a note above its code), one
    duplicated (the pasted copy untouched), one deleted, a line edited outside the TODOs."""
    nb = grade_selftest.solved(lab)
    blocks = block_todos(lab)
    index = {c["id"]: i for i, c in enumerate(lab.cells)}
    moved, deleted, duplicated = blocks[-1][0], blocks[1][0], blocks[0][0]
    cells = list(nb.cells)
    pasted = copy.deepcopy(cells[index[duplicated.cell_id]])
    pasted.source = compose(duplicated.template, duplicated.stubs)
    pasted.id = "pasted-copy"
    other = next(c for c in cells if c.cell_type == "code" and "session.start" not in c.source and "TODO" not in c.source)
    other.source += "\nprint('a line the learner added outside the TODOs')"
    target = cells[index[moved.cell_id]]
    target.source = "# my notes\n" + target.source
    keep = [c for c in cells if c.id not in (deleted.cell_id, moved.cell_id)]
    keep.insert(keep.index(cells[index[duplicated.cell_id]]) + 1, pasted)
    keep.append(target)
    nb.cells = keep
    return nb


# --------------------------------------------------------------------------- with kernels

def tree_digest():
    """A digest of the files grading must never change."""
    digest = hashlib.sha256()
    for folder in ("utils", "labs", "notebooks", "tools", "data", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest(), sorted(str(p.relative_to(ROOT)) for p in (ROOT / "labs").iterdir())


@pytest.fixture(scope="session")
def kernel_grading(labs, tmp_path_factory):
    """One grading call, in parallel, over every submission that needs a kernel."""
    folder = tmp_path_factory.mktemp("submissions")
    kinds, paths = {}, []
    several = [stem for stem in CHEAP[1:] if any(len(c.numbers) > 1 for c in lab_named(labs, stem).todo_cells)]
    fixtures = [(CHEAP[0], ("solved", "odd", "even"))] + [(stem, ("odd",)) for stem in several[:1]]
    for stem, wanted in fixtures:
        lab = lab_named(labs, stem)
        for kind in wanted:
            make = getattr(grade_selftest, kind)
            path = grade_selftest.write(make(lab), folder / kind / lab.name)
            kinds[str(path)] = (lab, kind)
            paths.append(path)
    lab = lab_named(labs, HOSTILE_LAB)
    hostile, hostile_kinds = hostile_submission(lab)
    tamper, tamper_kinds = tamper_submission(lab)
    extra = {"hostile.ipynb": hostile, "tamper.ipynb": tamper, "structure.ipynb": structure_submission(lab)}
    for name, nb in extra.items():
        paths.append(grade_selftest.write(nb, folder / name))
    before = tree_digest()
    report = grade.grade(paths, grade.Options(cell_timeout=CELL_TIMEOUT, budget=900))
    after = tree_digest()
    return {"report": validate(report), "kinds": kinds, "hostile": hostile_kinds, "tamper": tamper_kinds,
            "lab": lab, "unchanged": before == after}


@pytest.mark.slow
def test_solved_labs_get_full_points_and_each_wrong_todo_fails_alone(kernel_grading):
    report = kernel_grading["report"]
    fixtures = [r for r in report["submissions"] if r["file"] in kernel_grading["kinds"]]
    assert len(fixtures) >= 3 and {kind for _, kind in kernel_grading["kinds"].values()} == {"solved", "odd", "even"}
    assert grade_selftest.wrong_verdicts({"submissions": fixtures}, kernel_grading["kinds"]) == []
    for record in fixtures:
        lab, kind = kernel_grading["kinds"][record["file"]]
        assert record["points"] == (record["max_points"] if kind == "solved" else
                                    sum(s == "passed" for s in grade_selftest.expected(lab, kind).values()))
        for todo in record["todos"]:
            if todo["status"] == "failed":
                assert "Traceback" not in todo["message"] and "tampering" not in todo["message"]
        assert record["sandbox"]["memory_bytes"] > 0


@pytest.mark.slow
def test_hostile_submission_gets_each_verdict_within_its_limits(kernel_grading):
    record = by_file(kernel_grading["report"])["hostile.ipynb"]
    todos = {t["number"]: t for t in record["todos"]}
    for n, kind in kernel_grading["hostile"].items():
        todo = todos[n]
        if kind == "flood":
            assert todo["status"] == "passed" and any("cut off" in note for note in todo["notes"]), todo
        elif kind == "exit":
            assert todo["status"] == "error" and "kernel died" in todo["message"], todo
        elif kind == "network":
            assert todo["status"] in ("failed", "error") and "network access is disabled" in todo["message"], todo
            assert todo["seconds"] < CELL_TIMEOUT
        elif kind == "loop":
            assert todo["status"] == "timed out" and f"{CELL_TIMEOUT:.0f} s" in todo["message"], todo
            assert todo["seconds"] < CELL_TIMEOUT + INTERRUPT_GRACE + 5, todo  # interrupted, not left to run on
        elif kind == "write":
            assert todo["status"] in ("failed", "error") and "not allowed while grading" in todo["message"], todo
    assert record["status"] == "graded"
    assert any("kernel was replaced" in note for note in record["notes"])
    assert kernel_grading["unchanged"], "grading changed files in the repository"
    assert not (ROOT / "labs" / "x.txt").exists()


@pytest.mark.slow
def test_tampering_fake_success_and_a_fake_checks_module_do_not_pass(kernel_grading):
    record = by_file(kernel_grading["report"])["tamper.ipynb"]
    todos = {t["number"]: t for t in record["todos"]}
    for n, kind in kernel_grading["tamper"].items():
        if kind == "memory":
            assert todos[n]["status"] == "error" and todos[n]["message"].startswith("MemoryError"), todos[n]
            continue
        assert todos[n]["status"] == "failed", (kind, todos[n])
        if kind in ("dynamic", "static"):
            assert todos[n]["message"].startswith("tampering"), (kind, todos[n])
        else:
            assert "tampering" not in todos[n]["message"], (kind, todos[n])
    lab = kernel_grading["lab"]
    rest = [n for n in lab.numbers if n not in kernel_grading["tamper"]]
    assert all(todos[n]["status"] == "passed" for n in rest), todos


@pytest.mark.slow
def test_reordered_duplicated_deleted_and_old_cells_are_graded_by_content(kernel_grading):
    record = by_file(kernel_grading["report"])["structure.ipynb"]
    lab = kernel_grading["lab"]
    deleted = block_todos(lab)[1][1]
    assert statuses(record) == {n: "not attempted" if n == deleted else "passed" for n in lab.numbers}
    todo = next(t for t in record["todos"] if t["number"] == deleted)
    assert "not in the submission" in todo["message"]
    assert any("1 of the lab's" in note and "differ from the current lab" in note for note in record["notes"]), record["notes"]


@pytest.mark.slow
def test_grades_json_follows_its_schema_and_names_the_course_version(kernel_grading):
    report = kernel_grading["report"]
    assert report["course_commit"] != "" and report["mode"] == "fast"
    assert all(r["lab_version"] for r in report["submissions"])
    assert report["points"] == sum(r["points"] for r in report["submissions"])
