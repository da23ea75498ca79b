"""The grader's side of a learner's kernel (used by :mod:`tools.grade`).

Two halves, both running in the kernel process:

- :func:`launch` is the kernel's entry point (the argv of a temporary kernelspec). Before
  ipykernel starts it moves into the submission's scratch folder, sends the process's own
  stdout/stderr to a size-limited log there, sets resource limits (address space = memory,
  CPU seconds, file size, no core dumps, and the number of processes when it has a uid of
  its own), drops to an unprivileged uid when it runs as root (``nobody``) and confines
  itself with Landlock where the Linux kernel has it (writes only under the scratch
  folder; no TCP connections).
- :func:`install` runs first in the kernel, before any cell: it imports the checks
  (``utils.checks`` and all its modules) from the course's own files (the kernel has no
  copy of ``utils/`` in its scratch folder, and cannot write the course), snapshots the
  identity of everything the checks rely on (the check functions and their modules,
  NumPy / TensorFlow / Keras functions and classes, ``builtins``), installs an audit hook
  that refuses writes outside the scratch folder, network connections, and -- while
  learner code runs -- new processes, signals to other processes and ``ctypes``, and caps
  printed output. :func:`run_check` executes a check cell and records its outcome where
  printed text cannot reach; the grader reads it with :func:`outcome` through the
  execute reply's ``user_expressions``.

What this is not: a same-process guard cannot stop determined code from reaching into the
interpreter (``gc``, frames, ``ctypes``). The grader therefore also rejects such code
statically (:mod:`tools.grade`), compares the snapshot before and after every check, and
relies on the operating-system layers (uid, Landlock, limits) for what must hold whatever
the code does: the repository is not written and the machine is not exhausted.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
import types
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- launcher

_LANDLOCK_CREATE, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT = 444, 445, 446  # same on x86_64 and arm64
_PR_SET_NO_NEW_PRIVS = 38
# Landlock filesystem rights that change something (reads and execution stay allowed).
_FS_WRITE = 1 << 1
_FS_WRITES = {
    1: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)),  # write, remove dir/file, make char..sym
    2: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)),  # + refer (links/renames across folders)
    3: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)),  # + truncate
}
_FS_TRUNCATE = 1 << 14
_NET_CONNECT_TCP = 1 << 1
_SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """The Landlock ABI version this Linux kernel offers (0: none, or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        version = libc.syscall(_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def confine_writes(writable: list[str], devices: list[str]) -> str:
    """Confine this process and its children with Landlock: files may be written, created
    or removed only under ``writable`` (folders) and in ``devices`` (files such as
    ``/dev/null``); TCP connections are refused (ABI 4+); signals to processes outside the
    sandbox are refused (ABI 6+). Returns a one-line description of what was applied."""
    abi = landlock_abi()
    if abi < 1:
        return "not available (needs Linux 5.13+ with Landlock enabled)"
    libc = ctypes.CDLL(None, use_errno=True)
    writes = _FS_WRITES[min(abi, 3)]
    attr = _RulesetAttr(writes, _NET_CONNECT_TCP if abi >= 4 else 0, _SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_LANDLOCK_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"not applied (landlock_create_ruleset: {os.strerror(ctypes.get_errno())})"
    try:
        for path, rights in [(p, writes) for p in writable] + [(d, _FS_WRITE | (_FS_TRUNCATE if abi >= 3 else 0)) for d in devices]:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = _PathBeneath(rights, fd)
                if libc.syscall(_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) < 0:
                    return f"not applied (landlock_add_rule {path}: {os.strerror(ctypes.get_errno())})"
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            return f"not applied (no_new_privs: {os.strerror(ctypes.get_errno())})"
        if libc.syscall(_LANDLOCK_RESTRICT, ruleset, 0) < 0:
            return f"not applied (landlock_restrict_self: {os.strerror(ctypes.get_errno())})"
    finally:
        os.close(ruleset)
    parts = ["writes only under the scratch folder"]
    parts += ["no TCP connections"] if abi >= 4 else []
    parts += ["no signals outside the sandbox"] if abi >= 6 else []
    return f"Landlock ABI {abi}: " + ", ".join(parts)


def _set_limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


#: What :func:`launch` applied, reported by :func:`install` to the grader.
LAUNCHED: dict[str, Any] = {}


def launch(argv: list[str] | None = None) -> None:
    """The kernel's entry point: ``launch(["CONFIG.json", "CONNECTION.json"])``.

    CONFIG holds ``scratch`` (the folder the kernel may write in), ``memory_bytes``,
    ``cpu_seconds``, ``file_bytes``, ``uid``/``gid`` (or null) and ``landlock`` (bool).
    """
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    connection = Path(argv[1])
    scratch = Path(config["scratch"])
    os.chdir(scratch)
    log = os.open(scratch / ".kernel.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file-size limit fails instead of killing
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_AS, int(config["memory_bytes"]))
    _set_limit(resource.RLIMIT_CPU, int(config["cpu_seconds"]))
    _set_limit(resource.RLIMIT_FSIZE, int(config["file_bytes"]))
    LAUNCHED.update(memory_bytes=int(config["memory_bytes"]), cpu_seconds=int(config["cpu_seconds"]),
                    file_bytes=int(config["file_bytes"]), uid=os.getuid())
    if config.get("uid") is not None:
        # The kernel's own uid: it cannot write the repository (owned by root) and
        # RLIMIT_NPROC counts only its processes.
        own = scratch / ".connection.json"
        own.write_bytes(connection.read_bytes())
        os.chown(own, config["uid"], config["gid"])
        connection = own
        _set_limit(resource.RLIMIT_NPROC, int(config["processes"]))
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        LAUNCHED.update(uid=os.getuid(), processes=int(config["processes"]))
    LAUNCHED["landlock"] = confine_writes([str(scratch), "/dev/shm"], ["/dev/null", "/dev/zero"]) if config.get("landlock") else "off"
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=["-f", str(connection), "--HistoryManager.enabled=False", "--Application.log_level=CRITICAL"])


# --------------------------------------------------------------------------- in the kernel

class GuardError(PermissionError):
    """Something the grader does not allow (a write outside the scratch folder, the network...)."""


_STATE: dict[str, Any] = {"learner": False, "written": 0, "cap": 0, "truncated": False, "outcome": None}
_SNAPSHOT: dict[str, Any] = {}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ALWAYS_MUTATING = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
                    "os.chown", "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod",
                    "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree"}
_LEARNER_ONLY = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                 "pty.spawn", "ctypes.", "sys.setprofile", "sys.settrace")


def _allowed_path(path: Any, roots: tuple[str, ...]) -> bool:
    if isinstance(path, int):  # an fd already open
        return True
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(real == root or real.startswith(root + os.sep) for root in roots) or real in ("/dev/null", "/dev/zero")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    roots = _SNAPSHOT.get("writable", ())
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS)
        if writing and not _allowed_path(path, roots):
            raise GuardError(f"writing {path} is not allowed while grading: only the scratch folder is writable")
    elif event in _ALWAYS_MUTATING:
        for path in args[:2]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _allowed_path(path, roots):
                raise GuardError(f"{event}({path}) is not allowed while grading: only the scratch folder is writable")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock = args[0]
        if getattr(sock, "family", None) in (2, 10):  # AF_INET, AF_INET6
            raise GuardError("network access is disabled while grading")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"):
        raise GuardError("network access is disabled while grading")
    elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
        target = args[0]
        if event == "os.killpg" or target not in (0, os.getpid()) and not _is_child(target):
            raise GuardError("signalling other processes is not allowed while grading")
    elif _STATE["learner"] and event.startswith(_LEARNER_ONLY):
        raise GuardError(f"{event} is not allowed in a TODO's code while grading")


def _is_child(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


class _CappedWrite:
    """``stream.write`` that stops forwarding after ``_STATE["cap"]`` characters."""

    def __init__(self, write: Any) -> None:
        self._write = write

    def __call__(self, text: str) -> int:
        room = _STATE["cap"] - _STATE["written"]
        _STATE["written"] += len(text)
        if len(text) <= room:
            return self._write(text)
        if room > 0:
            self._write(text[:room])
        if not _STATE["truncated"]:
            _STATE["truncated"] = True
            self._write(f"\n[grader: printed output beyond {_STATE['cap']} characters is discarded]\n")
        return len(text)


def _functions_of(value: Any) -> tuple[int, ...]:
    """The identities that make up a value: a function's code and defaults too."""
    code = getattr(value, "__code__", None)
    if isinstance(value, types.FunctionType):
        return (id(value), id(code), id(value.__defaults__), id(value.__kwdefaults__))
    return (id(value),)


#: Builtins that IPython and ipykernel swap on every request (``exit``, ``input``...).
_MANAGED_BUILTINS = {"exit", "quit", "get_ipython", "input", "raw_input", "display"}


def _watch(namespace: dict[str, Any], skip_modules: bool) -> dict[str, tuple[int, ...]]:
    return {k: _functions_of(v) for k, v in list(namespace.items())
            if not (skip_modules and isinstance(v, types.ModuleType)) and not k.startswith("__")}


def _watch_builtins() -> dict[str, tuple[int, ...]]:
    import builtins

    return {k: v for k, v in _watch(vars(builtins), True).items() if k not in _MANAGED_BUILTINS}


def _take_snapshot() -> dict[str, dict[str, tuple[int, ...]]]:
    watched: dict[str, dict[str, tuple[int, ...]]] = {"builtins": _watch_builtins()}
    for name, module in list(sys.modules.items()):
        if module is None:
            continue
        own = name == "utils" or name.startswith(("utils.", "tools.grade"))
        library = name in _SNAPSHOT["library_modules"]
        if not (own or library):
            continue
        watched[f"module {name}"] = {"<module>": (id(module),), **_watch(vars(module), skip_modules=not own)}
        for attr, value in list(vars(module).items()):
            if isinstance(value, type) and (own or str(getattr(value, "__module__", "")).startswith(("keras", "tensorflow", "numpy"))):
                watched[f"class {name}.{attr}"] = _watch(dict(vars(value)), True)
    return watched


def _library_modules() -> set[str]:
    """The NumPy / TensorFlow / Keras modules whose functions and classes the checks call."""
    import keras
    import numpy as np
    import tensorflow as tf

    objects = [np, np.random, np.linalg, tf, tf.math, tf.nn, tf.linalg, tf.random, tf.config, keras, keras.layers,
               keras.ops, keras.losses, keras.random, keras.utils, keras.optimizers, keras.activations,
               keras.models, keras.metrics, keras.backend]
    names = {m.__name__ for m in objects}
    return {n for n in names if n in sys.modules}


def changed_since_snapshot() -> list[str]:
    """What differs from the snapshot taken by :func:`install`: ``module utils.checks: tensors``..."""
    shell = _SNAPSHOT["shell"]
    changed = []
    if shell.user_ns.get("checks", _SNAPSHOT["checks"]) is not _SNAPSHOT["checks"]:
        changed.append("the name `checks` no longer refers to the course's checks")
    if sys.modules.get("utils.checks") is not _SNAPSHOT["checks"]:
        changed.append("sys.modules['utils.checks'] was replaced")
    current = {"builtins": _watch_builtins()}
    for key, entries in _SNAPSHOT["watched"].items():
        kind, _, name = key.partition(" ")
        if kind == "module":
            module = sys.modules.get(name)
            if module is None or id(module) != entries["<module>"][0]:
                changed.append(f"module {name} was replaced in sys.modules")
                continue
            now = {"<module>": (id(module),), **_watch(vars(module), skip_modules=not (name == "utils" or name.startswith(("utils.", "tools.grade"))))}
        elif kind == "class":
            module_name, _, attr = name.rpartition(".")
            cls = getattr(sys.modules.get(module_name), attr, None)
            now = _watch(dict(vars(cls)), True) if isinstance(cls, type) else {}
        else:
            now = current[key]
        for attr, ids in entries.items():
            if now.get(attr) != ids:
                changed.append(f"{name}.{attr}" if kind != "builtins" else f"builtins.{attr}")
        if len(changed) > 20:
            break
    return changed


def install(nonce: str, scratch: str, output_cap: int, threads: int = 0) -> str:
    """Prepare the kernel before any cell runs; return what is in force, as JSON."""
    import importlib
    import pkgutil

    started = time.perf_counter()
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import utils
    import utils.checks

    failed = []
    for info in pkgutil.walk_packages(utils.checks.__path__, "utils.checks."):
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - reported, the lab will say more
            failed.append(f"{info.name}: {type(err).__name__}: {err}")
    import keras  # noqa: F401 - snapshotted below; every lab's setup imports both
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass
    from IPython import get_ipython

    shell = get_ipython()
    _SNAPSHOT.update(nonce=nonce, shell=shell, checks=utils.checks, check_error=utils.checks.CheckError,
                     todo_not_done=utils.checks.TodoNotDone, library_modules=_library_modules(),
                     writable=(os.path.realpath(scratch), "/dev/shm"))
    _SNAPSHOT["watched"] = _take_snapshot()
    _STATE["cap"] = output_cap
    for stream in (sys.stdout, sys.stderr):
        stream.write = _CappedWrite(stream.write)  # type: ignore[method-assign]
    sys.addaudithook(_audit)
    return json.dumps({"nonce": nonce, "launch": LAUNCHED, "preload_failed": failed,
                       "seconds": round(time.perf_counter() - started, 2), "pid": os.getpid()})


def enter(learner: bool) -> str:
    """Start a cell: reset the output count; ``learner`` turns on the guards for TODO code."""
    _STATE.update(learner=learner, written=0, truncated=False, outcome=None)
    return json.dumps({"nonce": _SNAPSHOT["nonce"]})


def leave() -> str:
    """End a cell; return JSON ``{"truncated": bool, "changed": [...]}``."""
    _STATE["learner"] = False
    return json.dumps({"nonce": _SNAPSHOT["nonce"], "truncated": _STATE["truncated"], "changed": changed_since_snapshot()})


def run_check(source: str, label: str) -> None:
    """Execute a check cell's ``source`` in the notebook's namespace with the guards on,
    and record its outcome for :func:`outcome` (never printed, never raised)."""
    before = changed_since_snapshot()
    if before:
        _STATE["outcome"] = {"status": "tampered", "changed": before}
        return
    shell = _SNAPSHOT["shell"]
    _STATE.update(learner=True, written=0, truncated=False)
    started = time.perf_counter()
    try:
        exec(compile(source, label, "exec"), shell.user_ns)  # noqa: S102 - the course's own check cell
        result: dict[str, Any] = {"status": "passed"}
    except _SNAPSHOT["todo_not_done"] as err:
        result = {"status": "failed", "todo_not_done": True, "message": str(err)}
    except _SNAPSHOT["check_error"] as err:
        result = {"status": "failed", "message": str(err)}
    except KeyboardInterrupt:
        result = {"status": "interrupted"}
    except BaseException as err:  # noqa: BLE001 - anything the learner's code raised
        result = {"status": "error", "ename": type(err).__name__, "message": _last_line(err)}
    finally:
        _STATE["learner"] = False
    result["seconds"] = round(time.perf_counter() - started, 3)
    after = changed_since_snapshot()
    if after:
        result = {"status": "tampered", "changed": after}
    result["truncated"] = _STATE["truncated"]
    _STATE["outcome"] = result


def _last_line(err: BaseException) -> str:
    from utils.checks._core import short_error

    try:
        return short_error(err)[:2000]
    except Exception:  # noqa: BLE001
        return type(err).__name__


def outcome() -> str:
    """The last :func:`run_check` outcome as JSON, tagged with the run's nonce."""
    return json.dumps({"nonce": _SNAPSHOT["nonce"], **(_STATE["outcome"] or {"status": "missing"})})
