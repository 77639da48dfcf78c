"""Functions that are platform tests in disguise: ``def aiter_can_use_x(): if not is_hip(): return False; ...``.

Such a function can only return something truthy on some platforms, so a test that calls it
(``if aiter_can_use_x():``, ``_use_x = aiter_can_use_x()``) is a platform check, in its own
module and in every module that imports it by name.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from harness.portability.platforms import ALL, NONE, PlatformSet
from harness.portability.predicates import ConditionEvaluator
from harness.portability.syntax import Functions


def predicate_functions(body: list[ast.stmt], evaluator: ConditionEvaluator) -> dict[str, PlatformSet]:
    """Module-level functions whose truthy returns only run on some platforms, with those platforms."""
    found = {}
    for stmt in body:
        if isinstance(stmt, Functions) and not stmt.decorator_list[1:]:
            truthy, _ = _truthy_returns(stmt.body, ALL, evaluator)
            if truthy and truthy != ALL:  # a function that never returns a truthy value is no test
                found[stmt.name] = truthy
    return found


def _truthy_returns(stmts: list[ast.stmt], ctx: PlatformSet, ev: ConditionEvaluator) -> tuple[PlatformSet, PlatformSet]:
    """(platforms where a possibly truthy ``return`` runs, platforms reaching the end of ``stmts``)."""
    found = NONE
    for stmt in stmts:
        if not ctx:
            break
        if isinstance(stmt, ast.Return):
            return found | (NONE if stmt.value is None or _falsy(stmt.value) else ctx & ev.evaluate(stmt.value).may_true), NONE
        if isinstance(stmt, ast.Raise):
            return found, NONE
        if isinstance(stmt, ast.If):
            cond = ev.evaluate(stmt.test).within(ctx)
            yes, end_yes = _truthy_returns(stmt.body, cond.may_true, ev)
            no, end_no = _truthy_returns(stmt.orelse, cond.may_false, ev)
            found, ctx = found | yes | no, end_yes | end_no
        elif isinstance(stmt, ast.Try):
            inner, end = _truthy_returns(stmt.body + stmt.orelse, ctx, ev)
            for handler in stmt.handlers:
                more, handler_end = _truthy_returns(handler.body, ctx, ev)
                inner, end = inner | more, end | handler_end
            found, ctx = found | inner, end
        elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            found |= _truthy_returns(stmt.body, ctx, ev)[0]  # the loop or block may also fall through
        elif isinstance(stmt, (*Functions, ast.ClassDef)):
            continue
    return found, ctx


def _falsy(value: ast.expr | None) -> bool:
    return value is None or (isinstance(value, ast.Constant) and not value.value)


def flag_companions(body: list[ast.stmt]) -> dict[str, frozenset[str]]:
    """Availability flags set right after the names they vouch for, in the same block::

        if _is_cuda:
            try:
                from flashinfer.norm import rmsnorm_quant as _rmsnorm_quant
                _rmsnorm_quant_available = True     # -> {"_rmsnorm_quant_available": {"_rmsnorm_quant"}}
            except ImportError:
                _rmsnorm_quant_available = False
    """
    found: dict[str, set[str]] = {}
    _scan_block(body, found)
    return {flag: frozenset(names) for flag, names in found.items() if names}


def _scan_block(stmts: list[ast.stmt], found: dict[str, set[str]]) -> None:
    imported: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imported.update(a.asname or a.name.split(".")[0] for a in stmt.names if a.name != "*")
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
              and isinstance(stmt.value, ast.Constant) and stmt.value.value is True and imported):
            found.setdefault(stmt.targets[0].id, set()).update(imported)
        for part in _blocks(stmt):
            _scan_block(part, found)


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, ast.Try):
        return [stmt.body, stmt.orelse, *(h.body for h in stmt.handlers)]
    return []


def flags_tested(test: ast.expr) -> tuple[frozenset[str], frozenset[str]]:
    """Names a test proves truthy when it is true, and when it is false (``not F``, ``a and F``)."""
    if isinstance(test, ast.Name):
        return frozenset({test.id}), frozenset()
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        pos, neg = flags_tested(test.operand)
        return neg, pos
    if isinstance(test, ast.BoolOp):
        parts = [flags_tested(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return frozenset().union(*(p for p, _ in parts)), frozenset()
        return frozenset(), frozenset().union(*(n for _, n in parts))
    return frozenset(), frozenset()


def imported_predicates(aliases: Mapping[str, str], known: Mapping[str, PlatformSet]) -> dict[str, PlatformSet]:
    """``from m import f as g`` where ``m.f`` is a predicate function: ``{"g": platforms}``."""
    return {bound: known[target] for bound, target in aliases.items() if target in known}
