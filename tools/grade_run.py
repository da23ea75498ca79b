"""Execute one graded submission: the worker behind :mod:`tools.grade`.

``python -m tools.grade_run JOB.json RESULT.json`` reads the plan that :mod:`tools.grade`
made for one submission (the pristine lab's cells up to its last check, each TODO cell
with the learner's code and the reference solution) and runs it in a fresh, confined
kernel (:mod:`tools.grade_sandbox`), writing each TODO's verdict to RESULT.json.

How a TODO cell is graded:

1. the cell with the learner's TODO regions (the other regions: the reference solution)
   runs under the per-cell time limit; an exception is ``error`` with its last line;
2. the check cell runs in the grader's wrapper; its outcome comes back in the execute
   reply's ``user_expressions``, tagged with this run's nonce -- printed text cannot
   forge it; a check that changed what the checks rely on is ``failed`` as tampering;
3. when a cell holds several TODOs and the check fails, each TODO is run alone (its
   learner code, the reference for the others), so each gets its own verdict;
4. the reference solution of the cell runs last, so later TODOs are graded on their own.

A cell past its time limit is interrupted (``timed out``); a kernel that dies (``os._exit``,
a crash, the memory limit) or does not come back from an interrupt is replaced by a fresh
one that replays the lab up to that point with the reference solutions.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils import ROOT

#: Seconds to wait for a kernel to answer an interrupt before replacing it.
INTERRUPT_GRACE = 10.0


class KernelLost(Exception):
    """The kernel died or stopped answering; the message says which."""


@dataclass
class Reply:
    """What one execute request gave: ``ok``, ``error``, ``timeout`` or ``dead``."""

    status: str
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    expressions: dict[str, Any] = field(default_factory=dict)
    recovered: bool = True  # after a timeout: the kernel answered the interrupt


def _scratch_owner(config: dict[str, Any]) -> tuple[int, int] | None:
    uid = config.get("uid")
    return None if uid is None else (int(uid), int(config["gid"]))


class Kernel:
    """A confined kernel in a scratch folder of its own."""

    def __init__(self, sandbox: dict[str, Any], limits: dict[str, Any], env: dict[str, str]) -> None:
        self.sandbox, self.limits, self.env = sandbox, limits, env
        self.work = Path(tempfile.mkdtemp(prefix="labs-grade-"))
        os.chmod(self.work, 0o711)
        self.scratch = self.work / "scratch"
        self.scratch.mkdir()
        for sub in ("home", "tmp", "mpl"):
            (self.scratch / sub).mkdir()
        owner = _scratch_owner(sandbox)
        if owner:
            for path in [self.scratch, *self.scratch.iterdir()]:
                os.chown(path, *owner)
        self.nonce = secrets.token_hex(16)
        self.km: Any = None
        self.kc: Any = None
        self.info: dict[str, Any] = {}

    def start(self, timeout: float) -> float:
        """Start the kernel and install the grader's side in it; return the seconds taken."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpec

        started = time.perf_counter()
        config = self.work / "config.json"
        config.write_text(json.dumps({"scratch": str(self.scratch), **self.limits, "uid": self.sandbox.get("uid"),
                                      "gid": self.sandbox.get("gid"), "landlock": self.sandbox.get("landlock", False)}))
        boot = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tools.grade_sandbox import launch; launch()"
        spec = KernelSpec(argv=[sys.executable, "-I", "-c", boot, str(config), "{connection_file}"],
                          display_name="labs grader", language="python", env={})
        env = {**self.env, "HOME": str(self.scratch / "home"), "TMPDIR": str(self.scratch / "tmp"),
               "MPLCONFIGDIR": str(self.scratch / "mpl"), "PWD": str(self.scratch)}
        self.km = KernelManager(connection_file=str(self.work / "connection.json"))
        self.km._kernel_spec = spec  # noqa: SLF001 - a spec of our own, not an installed one
        self.km.start_kernel(env=env, cwd=str(self.scratch))
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=timeout)
        except RuntimeError as err:
            raise KernelLost(f"the grading kernel did not start: {err}{self.last_words()}") from None
        threads = int(self.limits.get("threads", 0))
        code = (f"__import__('tools.grade_sandbox').grade_sandbox.install({self.nonce!r}, {str(self.scratch)!r}, "
                f"{int(self.limits['output_chars'])}, {threads})")
        reply = self.execute("", max(timeout - (time.perf_counter() - started), 5.0),
                             expressions={"info": code}, silent=True)
        info = self._decode(reply, "info")
        if reply.status != "ok" or info is None:
            raise KernelLost(f"the grader could not prepare the kernel ({reply.status} {reply.ename}: "
                             f"{reply.evalue}){self.last_words()}")
        self.info = info
        return time.perf_counter() - started

    def _decode(self, reply: Reply, key: str) -> Any:
        data = reply.expressions.get(key, {})
        if data.get("status") != "ok":
            return None
        text = data.get("data", {}).get("text/plain", "")
        try:
            import ast

            value = json.loads(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, dict) and value.get("nonce") == self.nonce else None

    def last_words(self) -> str:
        """The end of the kernel process's own log (empty when there is nothing useful)."""
        try:
            with open(self.scratch / ".kernel.log", "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(log.tell() - 1500, 0))
                text = log.read().decode(errors="replace").strip()
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()][-6:]
        return ("\nThe kernel's last words:\n" + "\n".join(lines)) if lines else ""

    def execute(self, code: str, timeout: float, expressions: dict[str, str] | None = None,
                silent: bool = False) -> Reply:
        """Run ``code``; wait at most ``timeout`` seconds (then interrupt)."""
        started = time.perf_counter()
        msg_id = self.kc.execute(code, silent=silent, store_history=False, user_expressions=expressions or {},
                                 allow_stdin=False, stop_on_error=False)
        deadline = started + max(timeout, 0.1)
        interrupted_at = None
        while True:
            self._drain_iopub()
            try:
                msg = self.kc.get_shell_msg(timeout=0.05)
            except queue.Empty:
                msg = None
            if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                content = msg["content"]
                seconds = time.perf_counter() - started
                if interrupted_at is not None:
                    return Reply("timeout", seconds=seconds, recovered=True)
                if content.get("status") == "ok":
                    return Reply("ok", seconds=seconds, expressions=content.get("user_expressions", {}))
                return Reply("error", ename=str(content.get("ename", ""))[:200],
                             evalue=str(content.get("evalue", ""))[:2000], seconds=seconds)
            now = time.perf_counter()
            if not self.km.is_alive():
                return Reply("dead", seconds=now - started)
            if interrupted_at is None and now > deadline:
                interrupted_at = now
                try:
                    self.km.interrupt_kernel()
                except Exception:  # noqa: BLE001 - the kernel is beyond reach: replaced below
                    return Reply("timeout", seconds=now - started, recovered=False)
            elif interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE:
                return Reply("timeout", seconds=now - started, recovered=False)

    def _drain_iopub(self) -> None:
        """Read and discard the kernel's output (only its volume matters; the grader's
        verdicts never come from it)."""
        for _ in range(1000):
            try:
                self.kc.get_iopub_msg(timeout=0)
            except queue.Empty:
                return

    def call(self, expression: str, timeout: float) -> Any:
        """Evaluate a grader expression in the kernel (JSON with this run's nonce)."""
        reply = self.execute("", timeout, expressions={"value": expression}, silent=True)
        if reply.status == "dead":
            raise KernelLost("the kernel died")
        if reply.status == "timeout":
            raise KernelLost("the kernel stopped answering")
        return self._decode(reply, "value")

    def peak_memory(self) -> dict[str, float]:
        """The kernel process's peak resident memory and address space so far, in GiB."""
        try:
            status = Path(f"/proc/{int(self.info['pid'])}/status").read_text()
        except (OSError, KeyError, ValueError):
            return {}
        found = dict(line.split(":", 1) for line in status.splitlines() if line.startswith(("VmHWM", "VmPeak")))
        return {("peak_rss_gb" if key == "VmHWM" else "peak_address_space_gb"): round(int(value.split()[0]) / 2**20, 2)
                for key, value in found.items()}

    def close(self) -> None:
        """Stop the kernel and remove its scratch folder."""
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            if self.km is not None:
                self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - best effort: the folder goes anyway
            pass
        shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------- one submission

SANDBOX_CALL = "__import__('tools.grade_sandbox').grade_sandbox"


class GraderFailure(Exception):
    """The lab itself could not be run (not the learner's code): nothing more can be graded."""


class BudgetSpent(Exception):
    """The submission's time budget ran out."""


@dataclass
class CellOutcome:
    """What running one TODO cell and its check gave."""

    status: str  # passed | failed | error | timed out | tampered
    message: str = ""
    truncated: bool = False
    broken: bool = False  # the kernel must be replaced before anything else runs


def compose(template: list[Any], code: dict[int, str]) -> str:
    """A TODO cell's source: the pristine text around its TODOs, each TODO's ``code``."""
    return "".join(piece if isinstance(piece, str) else code[int(piece)] for piece in template)


class Grading:
    """Runs one submission's plan (see the module docstring)."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.started = time.perf_counter()
        self.deadline = self.started + float(job["budget"])
        self.cell_timeout = float(job["cell_timeout"])
        self.history: list[str] = []
        self.kernel: Kernel | None = None
        self.verdicts: dict[int, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.sandbox_info: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMET_", "JPY_", "MPLBACKEND"))}
        env.update(LABS_FAST="1", LABS_TRACKING="disabled", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1",
                   PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
        self.env = env

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def _limit(self, seconds: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise BudgetSpent()
        return min(seconds, left)

    # -- kernels
    def _record_peak(self) -> None:
        if self.kernel is not None:
            for key, value in self.kernel.peak_memory().items():
                self.sandbox_info[key] = max(value, self.sandbox_info.get(key, 0.0))

    def fresh_kernel(self, why: str = "") -> None:
        """A new kernel with the lab replayed (reference solutions) up to this point."""
        if self.kernel is not None:
            self._record_peak()
            self.kernel.close()
            self.notes.append(f"the kernel was replaced ({why}); the lab up to that point was replayed with the "
                              f"reference solutions")
        self.kernel = Kernel(self.job["sandbox"], self.job["limits"], self.env)
        try:
            self.kernel.start(self._limit(float(self.job["startup_timeout"])))
        except KernelLost as err:
            raise GraderFailure(str(err)) from None
        self.sandbox_info = {**self.kernel.info.get("launch", {}), **{k: v for k, v in self.sandbox_info.items() if k.startswith("peak_")}}
        for code in self.history:
            reply = self.kernel.execute(code, self._limit(self.remaining()))
            if reply.status != "ok":
                self._spent_or_fail(reply, "replaying the lab after a kernel restart")

    def _spent_or_fail(self, reply: Reply, doing: str) -> None:
        if self.remaining() <= 0:
            raise BudgetSpent()
        detail = f"{reply.ename}: {reply.evalue}" if reply.status == "error" else reply.status
        raise GraderFailure(f"the lab's own code failed while {doing} ({detail}){self.kernel.last_words() if self.kernel else ''}")

    def run_state(self, code: str, label: str) -> None:
        """Run lab code that the rest depends on (a pristine cell, a reference TODO cell);
        after a failure, once more in a fresh kernel (learner code may have broken the state)."""
        assert self.kernel is not None
        reply = self.kernel.execute(code, self._limit(self.remaining()))
        if reply.status != "ok":
            if reply.status == "timeout" and self.remaining() <= 0:
                raise BudgetSpent()
            self.fresh_kernel(f"the lab's {label} failed after a TODO: {reply.ename or reply.status}")
            reply = self.kernel.execute(code, self._limit(self.remaining()))
            if reply.status != "ok":
                self._spent_or_fail(reply, f"running its {label}")
        self.history.append(code)

    # -- one TODO cell
    def try_cell(self, step: dict[str, Any], learner: dict[int, str]) -> CellOutcome:
        assert self.kernel is not None
        kernel = self.kernel
        code = compose(step["template"], {**{int(k): v for k, v in step["reference"].items()}, **learner})
        timeout = self._limit(self.cell_timeout)
        kernel.call(f"{SANDBOX_CALL}.enter(True)", 30)
        reply = kernel.execute(code, timeout)
        if reply.status == "dead":
            return CellOutcome("error", self._died("while its cell ran"), broken=True)
        if reply.status == "timeout":
            return CellOutcome("timed out", self._timed_out(timeout, "its cell"), broken=not reply.recovered)
        after = kernel.call(f"{SANDBOX_CALL}.leave()", 30) or {}
        if after.get("changed"):
            return CellOutcome("tampered", "; ".join(after["changed"][:5]), broken=True)
        cell_truncated = bool(after.get("truncated", False))
        if reply.status == "error":
            return CellOutcome("error", f"{reply.ename}: {_one_line(reply.evalue)}".rstrip(": "), cell_truncated)
        timeout = self._limit(self.cell_timeout)
        reply = kernel.execute(f"{SANDBOX_CALL}.run_check({step['check']!r}, {step['check_label']!r})", timeout,
                               expressions={"outcome": f"{SANDBOX_CALL}.outcome()"})
        if reply.status == "dead":
            return CellOutcome("error", self._died("while the check ran this TODO's code"), broken=True)
        if reply.status == "timeout":
            return CellOutcome("timed out", self._timed_out(timeout, "the check of this TODO"), broken=not reply.recovered)
        result = kernel._decode(reply, "outcome")  # noqa: SLF001
        if reply.status != "ok" or result is None:
            return CellOutcome("tampered", "the check's outcome did not come back through the grader's channel", broken=True)
        status = result.get("status")
        truncated = cell_truncated or bool(result.get("truncated"))
        if status == "passed":
            return CellOutcome("passed", truncated=truncated)
        if status == "failed":
            return CellOutcome("failed", str(result.get("message", "")), truncated)
        if status == "error":
            return CellOutcome("error", f"{result.get('message', '')}", truncated)
        if status == "tampered":
            return CellOutcome("tampered", "; ".join(result.get("changed", [])[:5]), broken=True)
        return CellOutcome("timed out", self._timed_out(timeout, "the check of this TODO"))

    def _died(self, when: str) -> str:
        memory = int(self.job["limits"]["memory_bytes"]) / 2**30
        words = self.kernel.last_words() if self.kernel else ""
        return (f"the kernel died {when} (os._exit, a crash, or more memory than the limit of {memory:.0f} GiB)"
                + (f": {words.splitlines()[-1]}" if words else ""))

    def _timed_out(self, seconds: float, what: str) -> str:
        if self.remaining() <= 0:
            return f"the submission's time budget ({self.job['budget']:.0f} s) ran out during {what}"
        return f"{what} was still running after {seconds:.0f} s, the limit for one cell (an endless loop?)"

    def grade_todo_cell(self, step: dict[str, Any]) -> None:
        pending = [int(n) for n in step["todos"] if str(n) not in self.job["decided"]]
        learner = {int(k): v for k, v in step["learner"].items() if v is not None and int(k) in pending}
        started = time.perf_counter()
        if learner:
            outcome = self.try_cell(step, learner)
            if outcome.status == "passed":
                outcomes = {n: outcome for n in learner}
            elif len(learner) == 1:
                outcomes = {n: outcome for n in learner}
            else:
                combined = outcome
                outcomes = {}
                for n in learner:
                    if outcome.broken:
                        self.fresh_kernel(f"{step['label']}: {outcome.status}")
                    outcome = self.try_cell(step, {n: learner[n]})
                    if outcome.status != "passed" and combined.message and combined.message != outcome.message:
                        outcome.message += f" (with all your TODOs of this cell together: {combined.message})"
                    outcomes[n] = outcome
            seconds = (time.perf_counter() - started) / max(len(learner), 1)
            for n, result in outcomes.items():
                status = "failed" if result.status == "tampered" else result.status
                message = (f"tampering: the TODO's code changed what the checks rely on ({result.message}); the "
                           f"grader does not trust a check after that") if result.status == "tampered" else result.message
                verdict = {"status": status, "message": message or None, "seconds": round(seconds, 2)}
                if result.truncated:
                    verdict["notes"] = ["its printed output was cut off by the grader's output limit"]
                self.verdicts[n] = verdict
            if outcome.broken or any(o.broken for o in outcomes.values()):
                self.fresh_kernel(f"after TODO {', '.join(map(str, learner))}: "
                                  f"{'; '.join(sorted({o.status for o in outcomes.values()}))}")
        reference = compose(step["template"], {int(k): v for k, v in step["reference"].items()})
        self.run_state(reference, f"{step['label']} (the reference solution)")

    def run(self) -> dict[str, Any]:
        status, message = "graded", None
        try:
            self.fresh_kernel()
            for step in self.job["steps"]:
                if step["kind"] == "code":
                    self.run_state(step["source"], step["label"])
                else:
                    self.grade_todo_cell(step)
        except BudgetSpent:
            for n in self.job["todo_numbers"]:
                if str(n) not in self.job["decided"] and n not in self.verdicts:
                    self.verdicts[n] = {"status": "timed out", "message": f"not graded: the submission's time budget "
                                        f"({self.job['budget']:.0f} s) ran out before this TODO"}
        except (GraderFailure, KernelLost) as err:
            status, message = "grader error", str(err)
            for n in self.job["todo_numbers"]:
                if str(n) not in self.job["decided"] and n not in self.verdicts:
                    self.verdicts[n] = {"status": "not graded", "message": f"not graded: {err}"}
        finally:
            if self.kernel is not None:
                self._record_peak()
                self.kernel.close()
        return {"status": status, "message": message, "verdicts": {str(k): v for k, v in self.verdicts.items()},
                "notes": self.notes, "sandbox": self.sandbox_info, "seconds": round(time.perf_counter() - self.started, 2)}


def _one_line(text: str) -> str:
    """The first non-empty line of an error's text (TensorFlow's long messages lead with the point)."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0][:500] if lines else ""


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds through Grading.run: the kernel is shut down


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _terminate)
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = Grading(job).run()
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
