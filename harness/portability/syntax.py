"""Small pure helpers over Python's ``ast``: names, parameters, early exits, ``hasattr`` guards."""

from __future__ import annotations

import ast
from collections.abc import Iterator

SKIPPED_FIELDS = frozenset({
    "annotation", "returns", "type_comment", "type_params",  # handled apart, if evaluated at all
    "ctx", "op", "ops", "conversion", "simple", "kind",  # never hold expressions
})
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_FIELD_CACHE: dict[type[ast.AST], tuple[str, ...]] = {}
Functions = (ast.FunctionDef, ast.AsyncFunctionDef)


def fields(kind: type[ast.AST]) -> tuple[str, ...]:
    """A node type's fields that can hold code to walk."""
    found = _FIELD_CACHE.get(kind)
    if found is None:
        found = _FIELD_CACHE[kind] = tuple(f for f in kind._fields if f not in SKIPPED_FIELDS)
    return found


def dotted_name(node: ast.expr) -> str | None:
    """``torch.version.hip`` for an Attribute chain over a Name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def terminates(stmts: list[ast.stmt]) -> bool:
    """Whether a block always leaves by return, raise, break or continue."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise, ast.Continue, ast.Break)):
        return True
    return isinstance(last, ast.If) and terminates(last.body) and terminates(last.orelse)


def catches_import_error(node: ast.expr | None) -> bool:
    """Whether an ``except`` clause catches ImportError (bare, Exception, tuples included)."""
    if node is None:
        return True
    if isinstance(node, ast.Tuple):
        return any(catches_import_error(e) for e in node.elts)
    name = dotted_name(node)
    return name is not None and name.rpartition(".")[2] in _IMPORT_ERRORS


def parameters(args: ast.arguments) -> set[str]:
    """Every parameter name of a function or lambda."""
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def annotation_nodes(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """Parameter and return annotations of a function."""
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    found = [a.annotation for a in every if a is not None and a.annotation is not None]
    return found + ([node.returns] if node.returns is not None else [])


def self_parameter(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The instance parameter of a method; None for static and class methods."""
    decorators = {dotted_name(d) for d in node.decorator_list}
    if decorators & {"staticmethod", "classmethod"}:
        return None
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def class_names(node: ast.ClassDef) -> set[str]:
    """Names a class body defines directly (methods, class attributes)."""
    names: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, (*Functions, ast.ClassDef)):
            names.add(stmt.name)
        for target in _targets(stmt):
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def function_names(body: list[ast.stmt]) -> set[str]:
    """Functions defined directly in a module or class body."""
    return {s.name for s in body if isinstance(s, Functions)}


def future_annotations(tree: ast.Module) -> bool:
    """Whether the module has ``from __future__ import annotations``."""
    return any(
        isinstance(s, ast.ImportFrom) and s.module == "__future__"
        and any(a.name == "annotations" for a in s.names)
        for s in tree.body
    )


def hasattr_guards(test: ast.expr, self_name: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """Attributes ``hasattr(self, "x")`` proves present when ``test`` is true / false."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        pos, neg = hasattr_guards(test.operand, self_name)
        return neg, pos
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return frozenset().union(*(hasattr_guards(v, self_name)[0] for v in test.values)), frozenset()
    if (isinstance(test, ast.Call) and isinstance(test.func, ast.Name)
            and test.func.id == "hasattr" and len(test.args) == 2
            and isinstance(test.args[0], ast.Name) and test.args[0].id == self_name
            and isinstance(test.args[1], ast.Constant) and isinstance(test.args[1].value, str)):
        return frozenset({test.args[1].value}), frozenset()
    return frozenset(), frozenset()


def _targets(stmt: ast.stmt) -> Iterator[ast.expr]:
    if isinstance(stmt, ast.Assign):
        yield from stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        yield stmt.target
