"""The suite checks itself for the habits that made green tests lie (issue #18): timed assertions,
sleeps in test bodies, `pytest.raises` that accepts any failure. Read as source (ast), so a new test
that slips back fails here with its file and line."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
# Waiting helpers with a deadline (wait_for, the worker registration poll) and the injected sleeps of
# the test jobs live here; a test body waits through them, never with a sleep of its own.
SLEEP_ALLOWED = {TESTS / "conftest.py", *(TESTS / "support").glob("*.py")}
# Exception types so broad that a test expecting them passes on an unrelated bug.
BROAD = {"Exception", "BaseException", "ValueError", "TypeError", "RuntimeError", "KeyError", "OSError",
         "AttributeError", "AssertionError", "LookupError", "IndexError"}
CLOCKS = ("monotonic", "perf_counter", "time.time", "elapsed")


def _sources():
    for path in sorted(TESTS.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS.parent)}:{node.lineno}"


def test_no_test_asserts_on_the_wall_clock():
    timed = [f"{_where(path, node)}: {ast.unparse(node.test)[:90]}"
             for path, tree in _sources() for node in ast.walk(tree)
             if isinstance(node, ast.Assert) and any(clock in ast.unparse(node.test) for clock in CLOCKS)]
    assert timed == [], "durations are measured in bench/, tests count requests, writes or USNs instead"


def test_test_bodies_never_sleep():
    sleeps = [_where(path, node) for path, tree in _sources() if path not in SLEEP_ALLOWED
              for node in ast.walk(tree)
              if isinstance(node, ast.Call) and ast.unparse(node.func) in ("time.sleep", "sleep", "asyncio.sleep")]
    assert sleeps == [], "wait for an event (tests/support: wait_for, gated jobs), never for a time"


def _raises_problem(call: ast.Call, bound: bool) -> str | None:
    if any(k.arg == "match" for k in call.keywords) or bound:
        return None  # the message is checked, by match= or by the test reading the exception it bound
    expected = call.args[0] if call.args else None
    if isinstance(expected, ast.Tuple):
        return "a tuple of exception types"
    name = ast.unparse(expected).rsplit(".", 1)[-1] if expected is not None else ""
    if name in BROAD:
        return f"{name} without match="
    return None


def _reaches_into_bench(tree: ast.AST) -> bool:
    """An import from the bench/ package, or bench/ put on sys.path (a test running a bench in a subprocess is fine)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "bench" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
            return True
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.path.insert", "sys.path.append") and \
                "'bench'" in ast.unparse(node) and "'var'" not in ast.unparse(node):
            return True
    return False


def test_no_test_imports_a_benchmark():
    # A benchmark points the process at its own lab and var dir when imported (bench/address_scan.py sets LAB_DIR):
    # imported by a test, it moved that xdist worker's later tests onto the bench's lab. Shared data lives in portal/.
    reach = [str(path.relative_to(TESTS.parent)) for path, tree in _sources()
             if path != Path(__file__) and _reaches_into_bench(tree)]
    assert reach == [], "import what a benchmark and a test share from portal/ (e.g. portal/lab/address_objects.py)"


def test_every_pytest_raises_pins_the_failure_it_expects():
    problems = []
    for path, tree in _sources():
        if path == Path(__file__):
            continue
        bound_calls = {id(item.context_expr) for node in ast.walk(tree) if isinstance(node, (ast.With, ast.AsyncWith))
                       for item in node.items if item.optional_vars is not None}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.raises":
                problem = _raises_problem(node, id(node) in bound_calls)
                if problem:
                    problems.append(f"{_where(path, node)}: {problem}")
    assert problems == [], "expect a specific exception type, or say which message with match="


def test_the_hygiene_checks_catch_what_they_are_for():
    """The three checks above find these on purpose (so they cannot pass by matching nothing)."""
    sample = ast.parse("with pytest.raises(ValueError):\n    f()\n"
                       "with pytest.raises((ad.NotFound, TypeError)):\n    f()\n"
                       "with pytest.raises(ad.NotFound):\n    f()\n"
                       "with pytest.raises(ValueError, match='bad'):\n    f()\n")
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call) and ast.unparse(n.func) == "pytest.raises"]
    assert [_raises_problem(c, False) for c in calls] == ["ValueError without match=", "a tuple of exception types",
                                                          None, None]
    assert _reaches_into_bench(ast.parse("sys.path.insert(0, str(ROOT / 'bench'))"))
    assert _reaches_into_bench(ast.parse("from bench.address_scan import _generated"))
    assert not _reaches_into_bench(ast.parse("from portal.lab.address_objects import generated_entries"))
    timed = ast.parse("assert time.monotonic() - start < 45")
    assert any(clock in ast.unparse(timed.body[0].test) for clock in CLOCKS)
