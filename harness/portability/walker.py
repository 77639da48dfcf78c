"""Walk one module's statements, recording for each import, binding and read the platforms it runs on."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from harness.portability.expressions import ExpressionWalker, Scope, selects
from harness.portability.facts import ClassFacts, ModuleFacts, NameUse
from harness.portability.guards import flag_companions, predicate_functions
from harness.portability.platforms import ALL, NONE, PlatformSet
from harness.portability.syntax import (
    Functions,
    annotation_nodes,
    catches_import_error,
    class_names,
    dotted_name,
    function_names,
    future_annotations,
    parameters,
    self_parameter,
    terminates,
)


class FactWalker(ExpressionWalker):
    """Record a module's facts while tracking the platforms each piece of code runs on.

    An ``if _is_cuda:`` body runs on {cuda}; code after ``if _is_npu: return`` runs
    everywhere but npu; ``forward_npu`` runs on {npu}; imports inside ``try: ...
    except ImportError:`` are guarded; function bodies do not run at import time.
    """

    lazy_annotations = False

    def run(self, tree: ast.Module) -> ModuleFacts:
        """Walk the module and return its facts."""
        self.ev.learn_module_aliases(tree.body)
        self.facts.predicate_functions = predicate_functions(tree.body, self.ev)
        self.companions = flag_companions(tree.body)
        if self.facts.predicate_functions:
            self.ev.functions.update(self.facts.predicate_functions)
            self.ev.learn_module_aliases(tree.body)  # `_use_x = can_use_x()` is a predicate now
        self.lazy_annotations = future_annotations(tree)
        self.facts.functions = function_names(tree.body)
        self.block(tree.body)
        self.module_uses.extend(self.scope.pending)
        partial = {n for n, ps in self.facts.bindings.items() if ps != ALL or self.facts.must_bindings.get(n) != ALL}
        self.facts.uses = [NameUse(*u) for u in self.module_uses if u[0] in partial]
        self.facts.func_refs = [
            (u[0], u[2], u[5]) for u in self.module_uses if u[0] in self.facts.functions
        ]
        top = self.facts.module.split(".")[0]
        in_tree = {b: t for b, t in self.facts.aliases.items() if t.split(".")[0] == top}
        self.facts.import_refs = [(in_tree[u[0]], u[2], u[5]) for u in self.module_uses if u[0] in in_tree]
        self.facts.decorated = {s.name for s in tree.body if isinstance(s, Functions) and s.decorator_list}
        return self.facts

    def block(self, stmts: list[ast.stmt]) -> PlatformSet:
        """Walk statements; returns where the end is reached (early exits narrow it)."""
        saved = self.ctx, self.safe_attrs, self.conditional, self.selected, self.safe_names
        for stmt in stmts:
            self.stmt(stmt)
        reached = self.ctx
        self.ctx, self.safe_attrs, self.conditional, self.selected, self.safe_names = saved
        return reached

    def stmt(self, node: ast.stmt) -> None:
        """Walk one statement."""
        handler = _STATEMENTS.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            self.generic(node)

    def _if(self, node: ast.If) -> None:
        logs: list[dict[str, PlatformSet]] = []
        cond, pos, neg = self.branches(node.test, lambda: logs.append(self._logged(node.body)),
                                       lambda: logs.append(self._logged(node.orelse)))
        self._join(cond, *logs)
        if terminates(node.body):
            self._narrow(cond.may_false, neg)
            self.selected = selects(cond, False) or self.selected
            self.safe_names |= self.vouched(node.test)[1]  # `if not _f_available: return`
        if terminates(node.orelse):
            self._narrow(cond.may_true, pos)
            self.selected = selects(cond, True) or self.selected

    def _logged(self, stmts: list[ast.stmt]) -> dict[str, PlatformSet]:
        """Walk a branch; the names it surely binds, by platform."""
        outer, self.sure_log = self.sure_log, {}
        self.block(stmts)
        found, self.sure_log = self.sure_log, outer
        return found

    def _join(self, cond: Any, body: dict[str, PlatformSet], orelse: dict[str, PlatformSet]) -> None:
        """After ``if``/``else``: a name is surely bound where each branch that can run there binds it.

        ``if _use_aiter: from aiter import f`` (ROCm and an env switch) leaves ``f`` unbound on ROCm
        without the switch; with ``else: f = fallback`` it is bound everywhere.
        """
        for name in body.keys() | orelse.keys():
            where = (body.get(name, NONE) | (ALL - cond.may_true)) & (orelse.get(name, NONE) | (ALL - cond.may_false))
            self.sure(name, self.ctx & where)

    def _narrow(self, ctx: PlatformSet, safe: frozenset[str]) -> None:
        """Restrict the rest of the block after an early exit.

        The rest stays the main path even when the exit test is not about platforms
        (``if x.shape[0] == 0: return x``), so it is not marked conditional.
        """
        self.ctx &= ctx
        self.safe_attrs |= safe

    def _while(self, node: ast.While) -> None:
        self.expr(node.test)
        ctx, conditional = self.ctx, self.conditional
        cond = self.ev.evaluate(node.test).within(ctx)
        self.ctx, self.conditional = cond.may_true, conditional or not cond.decided
        self._logged(node.body)  # a loop body may not run: nothing it binds is sure
        self.ctx, self.conditional = ctx, conditional
        self.block(node.orelse)

    def _assert(self, node: ast.Assert) -> None:
        self.generic(node)
        self.ctx &= self.ev.evaluate(node.test).may_true

    def _try(self, node: ast.Try) -> None:
        guarded, conditional = self.guarded, self.conditional
        self.guarded = guarded or any(catches_import_error(h.type) for h in node.handlers)
        self.block(node.body)
        self.guarded, self.conditional = guarded, True
        outer, self.sure_log = self.sure_log, {}  # a handler runs only when the body raised
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            if handler.name:
                self.bind(handler.name)
            self.block(handler.body)
        self.conditional, self.sure_log = conditional, outer
        self.block(node.orelse)
        self.block(node.finalbody)

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.record_import(alias.name, None, node.lineno)
            bound = alias.asname or alias.name.split(".")[0]
            self.bind(bound)
            if self.scope.kind == "module":
                self.facts.aliases[bound] = alias.name if alias.asname else bound

    def _import_from(self, node: ast.ImportFrom) -> None:
        module = self._absolute(node.module, node.level)
        for alias in node.names:
            if alias.name == "*":
                self.record_import(module, None, node.lineno)
                if self.scope.kind == "module":
                    self.facts.star_ctx |= self.ctx
                continue
            self.record_import(module, alias.name, node.lineno)
            bound = alias.asname or alias.name
            self.bind(bound)
            if self.scope.kind == "module":
                self.facts.aliases[bound] = f"{module}.{alias.name}"

    def _absolute(self, module: str | None, level: int) -> str:
        """Resolve ``from ..x import y`` against this module's package."""
        if level == 0:
            return module or ""
        parts = self.facts.module.split(".")
        if not self.facts.is_package:
            parts = parts[:-1]
        base = parts[: len(parts) - (level - 1)] if level > 1 else parts
        return ".".join([*base, module] if module else base)

    def _declare(self, node: ast.Global | ast.Nonlocal) -> None:
        if isinstance(node, ast.Global):
            self.scope.globals.update(node.names)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults,
                      *(() if self.lazy_annotations else annotation_nodes(node))):
            if child is not None:
                self.expr(child)
        in_class = self.scope.kind == "class"
        self.bind(node.name)
        params = parameters(node.args)
        self_name = self_parameter(node) if in_class else (
            self.self_name if self.self_name not in params else None)
        platforms = self._dispatch_platforms(node.name, in_class)
        saved = self.enter(Scope("function", self.scope, params))
        outer_locals, self.ev.locals = self.ev.locals, {}
        self.ctx &= platforms
        if platforms != ALL:
            self.selected = platforms  # forward_npu: the platform's own dispatch calls it
        self.named &= self.hinted(node.name)
        self.hint = self.named
        self.import_time = self.conditional = False
        if self.owner is None:
            self.owner = f"{self.cls.qualname}.{node.name}" if in_class and self.cls else node.name
        self.self_name = self.ev.self_name = self_name
        if in_class:
            self.safe_attrs = frozenset()
        reached = self.block(node.body)
        self.ev.locals = outer_locals
        self.leave(saved)
        if in_class and node.name == "__init__" and self.cls is not None:
            self.cls.init_platforms = reached  # `if not _is_cuda: raise` makes a CUDA-only class

    def _class(self, node: ast.ClassDef) -> None:
        for child in (*node.decorator_list, *node.bases, *node.keywords):
            self.node(child)
        self.bind(node.name)
        outer = self.cls.qualname + "." if self.cls and self.scope.kind == "class" else ""
        bases = tuple(b for b in map(dotted_name, node.bases) if b is not None)
        facts = ClassFacts(outer + node.name, node.lineno, bases, class_names(node))
        facts.methods = function_names(node.body)
        self.facts.classes.append(facts)
        aliases = self.ev.class_aliases(node)
        saved = self.enter(Scope("class", self.scope))
        self.cls, self.self_name, self.owner = facts, None, None
        self.ev.self_attrs = aliases
        self.named &= self.hinted(node.name)
        self.block(node.body)
        self.leave(saved)

    def _assign(self, node: ast.Assign) -> None:
        self.children(node)
        target = node.targets[0]
        if len(node.targets) == 1 and isinstance(target, ast.Name) and self.scope.kind == "function":
            cond = self.ev.evaluate(node.value)
            if cond.is_platform:
                self.ev.locals[target.id] = cond
            else:
                self.ev.locals.pop(target.id, None)

    def _annotated(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.expr(node.value)
        self.expr(node.target)
        if not self.lazy_annotations and self.scope.kind != "function":
            self.expr(node.annotation)

    def _dispatch_platforms(self, name: str, in_class: bool) -> PlatformSet:
        """Where a dispatch method such as ``forward_npu`` runs; ALL for other functions."""
        dispatch = self.profile.dispatch_methods
        if not (in_class and self.cls is not None and name in dispatch):
            return ALL
        platforms = dispatch[name]
        for missing, fallback in self.profile.dispatch_fallbacks.items():
            if fallback == name and missing in self.cls.class_names:
                platforms -= dispatch.get(missing, NONE)
        return platforms


_STATEMENTS: dict[type, Callable[[Any, Any], None]] = {
    **dict.fromkeys((ast.Expr, ast.Return, ast.AugAssign, ast.Delete, ast.Raise), FactWalker.children),
    ast.Assign: FactWalker._assign,
    ast.AnnAssign: FactWalker._annotated,
    ast.If: FactWalker._if,
    ast.While: FactWalker._while,
    ast.Assert: FactWalker._assert,
    ast.Try: FactWalker._try,
    ast.Import: FactWalker._import,
    ast.ImportFrom: FactWalker._import_from,
    ast.Global: FactWalker._declare,
    ast.Nonlocal: FactWalker._declare,
    ast.FunctionDef: FactWalker._function,
    ast.AsyncFunctionDef: FactWalker._function,
    ast.ClassDef: FactWalker._class,
}
if hasattr(ast, "TryStar"):
    _STATEMENTS[ast.TryStar] = FactWalker._try
