"""Every output trimzoo writes goes through ``trimzoo.utils.io.atomic_path``.

The static test reads every module of ``trimzoo/`` and ``tools/`` and
refuses a call that writes a file in place; the behavioural tests fail a
writer half-way and check that the earlier output is left as it was.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("trimzoo", "tools")
#: The module of the atomic writers; a call of one of its functions is safe
#: (its own writes are checked like any other module's).
IO_MODULE = "trimzoo.utils.io"

#: Functions that call a writer outside a ``with atomic_path(...)`` block,
#: each with the reason it is safe: ``(file, function): reason``.
ALLOWED = {
    ("trimzoo/predict.py", "_Writer.__init__"):
        "streams to the temporary path that predict_file's "
        "`with atomic_path(output_path) as tmp` gives it",
    ("trimzoo/predict.py", "_Writer.close"):
        "writes the .npy under the same temporary path, renamed by "
        "predict_file's atomic_path",
    ("trimzoo/training/loop.py", "MetricsWriter.write"):
        "appends a line to metrics.jsonl, a log; a line torn by a kill is "
        "dropped on resume (MetricsWriter.truncate_after)",
    ("trimzoo/export/benchmark.py", "keras_weights_size"):
        "saves weights into a TemporaryDirectory only to measure their "
        "size; nothing is written under a user's path",
    ("trimzoo/export/app_file.py", "add_metadata"):
        "writes the vocabulary and labels MediaPipe's writer reads into its "
        "own TemporaryDirectory; the app file is written atomically",
    ("trimzoo/export/app_file.py", "probe_flatbuffer"):
        "saves the tokenizer probe into the export's scratch "
        "TemporaryDirectory, never under a user's path",
    ("trimzoo/export/app_file.py", "token_differences"):
        "writes the tokenizer probe into the export's scratch "
        "TemporaryDirectory, never under a user's path",
    ("trimzoo/utils/run_folder.py", "RunFolder._acquire"):
        "the lock file holds only the holder's pid, for a person to read; "
        "no decision reads it back (the lock is the flock)",
}

#: Calls ``NAME(...)`` or ``x.NAME(...)`` that write the file or folder
#: they are given.
WRITING_METHODS = {
    "savefig", "write_text", "write_bytes", "tofile", "save_weights",
    "save_to_preset", "to_csv", "savetxt", "savez", "savez_compressed",
    "save_model", "TFRecordWriter", "save_file", "copyfile", "copy", "copy2",
    "copytree",
}
#: ``MODULE.save(...)`` with these modules writes a file (``np.save``,
#: ``tf.saved_model.save``); ``x.save`` of other objects (a checkpoint
#: manager, the training state) is their own business.
SAVING_MODULES = {"np", "numpy", "saved_model", "keras", "saving"}
#: Calls that open a file, and the position of their ``mode`` argument.
OPENERS = {"open": 1, "GFile": 1, "fdopen": 1}


def _name(func):
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _opens_for_writing(call):
    name = _name(call.func)
    if name not in OPENERS:
        return False
    position = OPENERS[name]
    if isinstance(call.func, ast.Attribute) and isinstance(
            call.func.value, ast.Call):
        position = 0  # pathlib: Path(...).open(mode)
    mode = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None and len(call.args) > position:
        mode = call.args[position]
    if mode is None:
        return False  # "r"
    if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)):
        return True  # A mode chosen at run time may write.
    return bool(set(mode.value) & set("wax+"))


def _writes(call, helpers, io_modules):
    """A description of what ``call`` writes in place, or None.
    ``helpers``: names of ``trimzoo.utils.io``'s functions here;
    ``io_modules``: names of that module here."""
    name = _name(call.func)
    if (isinstance(call.func, ast.Name) and name in helpers) or (
            isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in io_modules):
        return None
    if _opens_for_writing(call):
        return f"{name}(..., mode for writing)"
    if name in WRITING_METHODS:
        if name.startswith("copy") and not (
                isinstance(call.func, ast.Attribute)
                and _name(call.func.value) == "shutil"):
            return None  # dict.copy(), list.copy() ...
        return f"{name}(...)"
    if (name == "save" and isinstance(call.func, ast.Attribute)
            and _name(call.func.value) in SAVING_MODULES):
        return f"{_name(call.func.value)}.save(...)"
    return None


def _is_atomic_with(node):
    return isinstance(node, ast.With) and any(
        isinstance(item.context_expr, ast.Call)
        and _name(item.context_expr.func) == "atomic_path"
        for item in node.items)


def _io_names(tree, module):
    """The names that ``tree`` (module ``module``) binds to the functions
    of ``trimzoo.utils.io``, and to the module itself."""
    helpers, modules = set(), set()
    if module == IO_MODULE:
        helpers = {node.name for node in tree.body
                   if isinstance(node, ast.FunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == IO_MODULE:
            helpers.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.update(a.asname or a.name for a in node.names
                           if f"{node.module}.{a.name}" == IO_MODULE)
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names
                           if a.name == IO_MODULE and a.asname)
    return helpers, modules


class _Finder(ast.NodeVisitor):
    """Collects ``(line, function, what)`` of writes outside
    ``with atomic_path(...)`` blocks."""

    def __init__(self, helpers, io_modules):
        self.helpers, self.io_modules = helpers, io_modules
        self.scope, self.atomic, self.found = [], 0, []

    def _visit_scope(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = (
        _visit_scope)

    def visit_With(self, node):
        atomic = _is_atomic_with(node)
        self.atomic += atomic
        self.generic_visit(node)
        self.atomic -= atomic

    def visit_Call(self, node):
        what = _writes(node, self.helpers, self.io_modules)
        if what and not self.atomic:
            self.found.append((node.lineno, ".".join(self.scope), what))
        self.generic_visit(node)


def _modules():
    for top in SOURCES:
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, ROOT).replace(os.sep, "/")


def in_place_writes(relpath, source=None):
    """``(line, function, what)`` of each write in ``relpath`` (or in
    ``source``) outside a ``with atomic_path(...)`` block."""
    if source is None:
        with open(os.path.join(ROOT, relpath), encoding="utf-8") as f:
            source = f.read()
    tree = ast.parse(source, relpath)
    module = relpath[:-len(".py")].replace("/", ".")
    finder = _Finder(*_io_names(tree, module))
    finder.visit(tree)
    return finder.found


def test_every_output_is_written_through_atomic_path():
    found, used = [], set()
    for relpath in _modules():
        for line, function, what in in_place_writes(relpath):
            if (relpath, function) in ALLOWED:
                used.add((relpath, function))
            else:
                found.append(f"{relpath}:{line} in {function or '<module>'}"
                             f": {what}")
    assert not found, (
        "Writes in place (write under `with trimzoo.utils.io.atomic_path("
        "path) as tmp`, or use io.write_text / write_bytes / write_json / "
        "save_figure):\n" + "\n".join(found))
    assert used == set(ALLOWED), (
        f"Stale entries in ALLOWED: {sorted(set(ALLOWED) - used)}")


def test_the_static_check_sees_each_kind_of_write():
    source = '''
import json, shutil
import numpy as np
from trimzoo.utils import io
from trimzoo.utils.io import write_text
def f(path, fig, p, mode):
    with open(path, "w") as out:
        json.dump({}, out)
    open(path, mode="ab")
    open(path, mode)
    fig.savefig(path)
    p.write_text("x")
    np.save(path, 0)
    shutil.copyfile(path, p)
    open(path).read()
    open(path, "rb").read()
    {}.copy()
    write_text(path, "x")
    io.save_figure(fig, path)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as out:
            json.dump({}, out)
        fig.savefig(tmp)
'''
    found = in_place_writes("example.py", source)
    assert [line for line, _, _ in found] == [7, 9, 10, 11, 12, 13, 14]
    assert {function for _, function, _ in found} == {"f"}


# --- Behaviour ------------------------------------------------------------------

ROWS = [{"model": "m", "key": "m", "layers": 2, "params": 1000,
         "distilled": False, "test_accuracy": 0.8, "percent_of_teacher": 100.0,
         "keras_ms_b1": 1.5}]


def _fail_writing(monkeypatch, basename):
    """Every later write of a file named ``basename`` (under any folder,
    a temporary one included) writes a few bytes, then raises like a full
    disk."""
    import builtins

    real_open = builtins.open

    class Failing:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:5])
            self.f.flush()
            raise OSError(28, "No space left on device")

    def failing_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if (isinstance(file, (str, os.PathLike))
                and os.path.basename(os.fspath(file)) == basename
                and set(mode) & set("wax+")):
            return Failing(f)
        return f

    monkeypatch.setattr(builtins, "open", failing_open)


@pytest.mark.parametrize("failing", ["report.md", "accuracy_latency.png"])
def test_a_failed_demo_report_leaves_the_earlier_files(tmp_path, monkeypatch,
                                                        failing):
    from trimzoo import demo

    out = str(tmp_path)
    demo.write_report(out, ROWS, max_seq_length=64, seconds=60)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"report.md", "results.json",
                           "accuracy_latency.png"}

    _fail_writing(monkeypatch, failing)
    changed = [dict(ROWS[0], test_accuracy=0.9)]
    with pytest.raises(OSError, match="No space left"):
        demo.write_report(out, changed, max_seq_length=64, seconds=61)
    monkeypatch.undo()
    assert sorted(os.listdir(out)) == sorted(before)  # no temporary left
    assert (tmp_path / failing).read_bytes() == before[failing]
    # What was written before the failure is complete.
    assert demo.load_results(out) == changed
