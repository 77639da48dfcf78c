"""Import-probe child: runs inside the runtime's Python (stdlib only, 3.8+), passed with ``-c``.

Reads a JSON config (argv[1]), hides the blocked packages from every import finder,
imports each module in turn and writes one JSON line per event to the original stdout.
Anything the imported code prints goes to stderr.
"""

import importlib
import json
import os
import signal
import sys
import time
import traceback


class ProbeTimeout(BaseException):
    """Raised by the alarm when one module takes too long to import."""


def _blocked(name, blocked):
    return any(name == b or name.startswith(b + ".") for b in blocked)


class _Hidden:
    """Wraps a meta-path finder so blocked packages look uninstalled (find_spec -> None)."""

    def __init__(self, finder, blocked):
        self._finder = finder
        self._blocked = blocked

    def find_spec(self, name, path=None, target=None):
        """None for blocked names (as if not installed); otherwise ask the wrapped finder."""
        if _blocked(name, self._blocked):
            return None
        return self._finder.find_spec(name, path, target)

    def __getattr__(self, attr):
        return getattr(self._finder, attr)


def _hide(blocked):
    for name in list(sys.modules):
        if _blocked(name, blocked):
            del sys.modules[name]
    sys.meta_path[:] = [_Hidden(f, blocked) if hasattr(f, "find_spec") else f for f in sys.meta_path]


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _frames(exc, roots):
    """(last frame outside import machinery, innermost frame under one of ``roots``)."""
    machinery = os.path.dirname(importlib.__file__)
    last = origin = None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith("<") or os.path.dirname(os.path.abspath(name)) == machinery:
            continue
        last = f"{name}:{frame.lineno}"
        if any(os.path.abspath(name).startswith(r) for r in roots):
            origin = last
    return last, origin


def _machinery(exc, module):
    """Whether the import failed in the import system's or the probe's own bookkeeping, not in the module.

    ``KeyError: 'sglang'`` while importing ``sglang.srt.x``: a parent package vanished from
    ``sys.modules`` (a module of an earlier import removed it), which says nothing about the module.
    """
    key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
    if isinstance(key, str) and (module == key or module.startswith(key + ".")):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return len(frames) > 1 and frames[-1].filename == "<string>"  # raised by this file (run with -c)


def _describe(exc, blocked, roots, module=""):
    hidden = [e for e in _chain(exc) if isinstance(e, ImportError) and e.name and _blocked(e.name, blocked)]
    if isinstance(exc, ProbeTimeout):
        kind = "timeout"
    elif hidden:
        kind = "blocked-import"
    elif isinstance(exc, ModuleNotFoundError):
        kind = "missing-module"
    elif _machinery(exc, module):
        kind = "probe-machinery"
    else:
        kind = "error"
    last, origin = _frames(exc, roots)
    return {
        "kind": kind,
        "exception": type(exc).__name__,
        "message": str(exc)[:500],
        "blocked_module": hidden[0].name if hidden else None,
        "missing_module": getattr(exc, "name", None) if kind == "missing-module" else None,
        "last_frame": last,
        "origin": origin,
    }


def _on_alarm(signum, frame):
    raise ProbeTimeout("import took longer than the per-module limit")


def main(config_path):
    """Import every configured module, reporting each as JSON lines on the original stdout."""
    with open(config_path) as handle:
        config = json.load(handle)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for path in reversed(config["sys_path"]):
        sys.path.insert(0, path)
    blocked = tuple(config["blocked"])
    roots = [os.path.abspath(r) for r in config["roots"]]
    _hide(blocked)
    timer = hasattr(signal, "setitimer")
    if timer:
        signal.signal(signal.SIGALRM, _on_alarm)
    for module in config["modules"]:
        out.write(json.dumps({"event": "start", "module": module}) + "\n")
        started = time.monotonic()
        record = {"event": "done", "module": module, "ok": True}
        try:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, config["module_timeout"])
            importlib.import_module(module)
        except BaseException as exc:  # the probe reports every failure, SystemExit included
            record.update(ok=False, **_describe(exc, blocked, roots, module))
        finally:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
        record["seconds"] = round(time.monotonic() - started, 3)
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
