"""Walker state, scopes and expression handling; statements live in ``walker.py``."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Literal

from harness.portability.facts import AttrUse, ClassFacts, ImportSite, ModuleFacts
from harness.portability.guards import flags_tested
from harness.portability.platforms import ALL, NONE, Condition, PlatformSet
from harness.portability.predicates import ConditionEvaluator
from harness.portability.syntax import fields, hasattr_guards, parameters

ScopeKind = Literal["module", "class", "function"]
Use = tuple[str, int, PlatformSet, bool, bool, "str | None", PlatformSet]  # NameUse fields, as a cheap tuple
_SELECTS_AT_MOST = 2  # a test true on at most this many platforms names them: `if _is_npu or _is_cpu:`


def selects(cond: Condition, branch: bool) -> PlatformSet:
    """Platforms a branch explicitly sends here: ``if _is_npu:`` selects {npu}; ``if not _is_npu:`` nothing."""
    if not cond.decided:
        return NONE
    chosen = cond.may_true if branch else cond.may_false
    return chosen if 0 < len(chosen) <= _SELECTS_AT_MOST else NONE


class Scope:
    """Names a scope binds, and reads it could not resolve yet."""

    __slots__ = ("kind", "parent", "locals", "globals", "pending")

    def __init__(self, kind: ScopeKind, parent: Scope | None, names: set[str] | None = None):
        self.kind = kind
        self.parent = parent
        self.locals: set[str] = names or set()
        self.globals: set[str] = set()
        self.pending: list[Use] = []


class ExpressionWalker:
    """State shared by the walk, name resolution, and the expression handlers.

    ``ctx``: platforms where the current code can run, from real checks (``if
    _is_cuda:``, ``forward_npu``). ``hint``: platforms the enclosing names suggest
    (``_forward_aiter``); it narrows reads only. ``conditional``: the code also sits
    under a test that is not about platforms. ``selected``: platforms a platform test or a
    dispatch method explicitly sends to the current code (``elif _is_npu:``, ``forward_npu``).
    """

    _SAVED = ("scope", "ctx", "import_time", "guarded", "conditional", "cls", "self_name",
              "safe_attrs", "named", "hint", "owner", "selected", "safe_names")

    def __init__(self, facts: ModuleFacts, evaluator: ConditionEvaluator) -> None:
        self.facts = facts
        self.ev = evaluator
        self.profile = evaluator.profile
        self.ctx: PlatformSet = ALL
        self.import_time = True
        self.guarded = False
        self.conditional = False
        self.owner: str | None = None
        self.cls: ClassFacts | None = None
        self.self_name: str | None = None
        self.safe_attrs: frozenset[str] = frozenset()
        self.named = self.hinted(facts.module.replace(".", "_"))
        self.hint: PlatformSet = ALL
        self.scope = Scope("module", None)
        self.module_uses: list[Use] = []
        self.selected: PlatformSet = NONE
        # names a branch being walked surely binds, by platform (None: the module's top level)
        self.sure_log: dict[str, PlatformSet] | None = None
        self.companions: dict[str, frozenset[str]] = {}  # availability flag -> names it vouches for
        self.safe_names: frozenset[str] = frozenset()  # names a tested availability flag vouches for here
        self.table_key: str | None = None  # the string key of the dispatch-table entry being walked

    def block(self, stmts: list[ast.stmt]) -> PlatformSet:
        """Walk statements (see ``FactWalker``)."""
        raise NotImplementedError

    def stmt(self, node: ast.stmt) -> None:
        """Walk one statement (see ``FactWalker``)."""
        raise NotImplementedError

    def hinted(self, name: str) -> PlatformSet:
        """Platforms a name is about (``_forward_aiter`` -> {rocm}); ALL when it names none."""
        if not self.profile.name_hints:
            return ALL
        found = self.ev.classifier.name_platforms(name)
        return ALL if found is None else found

    # -- scopes --------------------------------------------------------------------------
    def enter(self, scope: Scope) -> tuple[Any, ...]:
        """Open a scope; returns the state to hand back to ``leave``."""
        saved = (*(getattr(self, n) for n in self._SAVED), self.ev.self_attrs)
        self.scope = scope
        return saved

    def leave(self, saved: tuple[Any, ...]) -> None:
        """Close the current scope, passing reads it does not bind to the enclosing one."""
        scope = self.scope
        for name, value in zip(self._SAVED, saved[:-1], strict=True):
            setattr(self, name, value)
        self.ev.self_attrs = saved[-1]
        self.ev.self_name = self.self_name
        target = self.scope
        while scope.kind == "function" and target.kind == "class" and target.parent is not None:
            target = target.parent  # functions do not see class-body names
        for use in scope.pending:
            if use[0] in scope.globals:
                self.module_uses.append(use)
            elif use[0] not in scope.locals:
                target.pending.append(use)

    def bind(self, name: str) -> None:
        """Record a binding of ``name`` in the current scope."""
        scope = self.scope
        if scope.kind == "module":
            self.facts.bind(name, self.ctx)
            self.sure(name, self.ctx)
        elif name in scope.globals:
            self.facts.bind(name, self.ctx)  # not surely: the function may never run
        else:
            scope.locals.add(name)
            if scope.kind == "class" and self.cls is not None:
                self.cls.class_names.add(name)

    def sure(self, name: str, platforms: PlatformSet) -> None:
        """``name`` is surely bound on ``platforms`` once the code walked now has run."""
        if self.sure_log is None:
            self.facts.must_bindings[name] = self.facts.must_bindings.get(name, NONE) | platforms
        elif platforms:
            self.sure_log[name] = self.sure_log.get(name, NONE) | platforms

    def load(self, name: str, line: int) -> None:
        """Record a read of ``name``, resolved when its scope closes (not one a tested flag vouches for)."""
        if name in self.safe_names:
            return
        self.scope.pending.append(
            (name, line, self.ctx & self.hint, self.import_time, self.conditional, self.owner,
             self.selected & self.ctx)
        )

    def record_import(self, module: str, name: str | None, line: int) -> None:
        """Record one imported module or name."""
        self.facts.imports.append(ImportSite(
            module, name, line, self.ctx & self.hint, self.import_time, self.guarded, self.conditional,
            self.owner, self.selected & self.ctx,
        ))

    # -- generic traversal ---------------------------------------------------------------
    def expr(self, node: ast.expr) -> None:
        """Walk one expression."""
        handler = _EXPRESSIONS.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            self.generic(node)

    def generic(self, node: ast.AST) -> None:
        """Walk every child of ``node`` except annotations."""
        for field in fields(type(node)):
            value = getattr(node, field, None)
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self.block(value)
                    continue
                for item in value:
                    if isinstance(item, ast.AST):
                        self.node(item)
            elif isinstance(value, ast.AST):
                self.node(value)

    def node(self, node: ast.AST) -> None:
        """Walk a statement, an expression or a helper node."""
        if isinstance(node, ast.expr):
            self.expr(node)
        elif isinstance(node, ast.stmt):
            self.stmt(node)
        else:
            self.generic(node)

    def children(self, node: ast.AST) -> None:
        """Walk a node whose fields are all expressions or lists of expressions."""
        for field in fields(type(node)):
            value = getattr(node, field)
            if isinstance(value, list):
                for item in value:
                    if item is not None:
                        self.expr(item)
            elif value is not None:
                self.expr(value)

    # -- expressions ---------------------------------------------------------------------
    def _name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.load(node.id, node.lineno)
        elif isinstance(node.ctx, ast.Store):
            self.bind(node.id)

    def _attribute(self, node: ast.Attribute) -> None:
        cls, value = self.cls, node.value
        if cls is not None and isinstance(value, ast.Name) and value.id == self.self_name:
            if isinstance(node.ctx, ast.Store):
                cls.store(node.attr, self.ctx)
            elif node.attr in cls.methods:
                cls.method_refs.append((node.attr, self.ctx & self.hint, self.owner))
                cls.method_flags.append((node.attr, self.safe_names, self.owner))
                cls.method_keys.append((node.attr, self.table_key))
            elif isinstance(node.ctx, ast.Load) and node.attr not in self.safe_attrs and self.ctx:
                cls.loads.append(AttrUse(
                    node.attr, node.lineno, self.ctx & self.hint, self.conditional, self.owner,
                    self.selected & self.ctx,
                ))
        self.expr(value)

    def _call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        first = node.args[0] if node.args else None
        if name == "setattr" and len(node.args) > 1:
            self._setattr(first, node.args[1])
        elif name == "import_module" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            self.record_import(first.value, None, node.lineno)
        self.expr(func)
        for arg in node.args:
            self.expr(arg)
        for keyword in node.keywords:
            self.expr(keyword.value)

    def _setattr(self, target: ast.expr | None, attr: ast.expr) -> None:
        if (self.cls is not None and isinstance(target, ast.Name) and target.id == self.self_name
                and isinstance(attr, ast.Constant) and isinstance(attr.value, str)):
            self.cls.store(attr.value, self.ctx)

    def _boolop(self, node: ast.BoolOp) -> None:
        saved = self.ctx, self.safe_attrs, self.conditional
        for value in node.values:
            self.expr(value)
            cond = self.ev.evaluate(value).within(self.ctx)
            pos, neg = hasattr_guards(value, self.self_name)
            if isinstance(node.op, ast.And):
                self.ctx, self.safe_attrs = cond.may_true, self.safe_attrs | pos
            else:
                self.ctx, self.safe_attrs = cond.may_false, self.safe_attrs | neg
            self.conditional = self.conditional or not cond.decided
        self.ctx, self.safe_attrs, self.conditional = saved

    def _ifexp(self, node: ast.IfExp) -> None:
        self.branches(node.test, lambda: self.expr(node.body), lambda: self.expr(node.orelse))

    def branches(self, test: ast.expr, on_true: Callable[[], Any],
                 on_false: Callable[[], Any]) -> tuple[Any, frozenset[str], frozenset[str]]:
        """Walk ``test``, then each branch under the platforms (and hasattr guards) it allows.

        The walker's state is restored afterwards; returns the test's condition and its positive
        and negative hasattr guards, for narrowing after a branch that exits.
        """
        self.expr(test)
        cond = self.ev.evaluate(test).within(self.ctx)
        pos, neg = hasattr_guards(test, self.self_name)
        ctx, safe, conditional, selected, names = self.ctx, self.safe_attrs, self.conditional, self.selected, self.safe_names
        flags_true, flags_false = self.vouched(test)
        self.conditional = conditional or not cond.decided
        self.ctx, self.safe_attrs, self.safe_names = cond.may_true, safe | pos, names | flags_true
        self.selected = selects(cond, True) or selected
        on_true()
        self.ctx, self.safe_attrs, self.safe_names = cond.may_false, safe | neg, names | flags_false
        self.selected = selects(cond, False) or selected
        on_false()
        self.ctx, self.safe_attrs, self.conditional, self.selected, self.safe_names = (
            ctx, safe, conditional, selected, names)
        return cond, pos, neg

    def _dict(self, node: ast.Dict) -> None:
        """``{"flashinfer": self._forward_flashinfer, ...}``: each value is chosen by its key."""
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None:
                self.expr(key)
            outer = self.table_key
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.table_key = key.value
            self.expr(value)
            self.table_key = outer

    def vouched(self, test: ast.expr) -> tuple[frozenset[str], frozenset[str]]:
        """Names the availability flags in ``test`` vouch for, when it is true and when it is false."""
        if not self.companions:
            return frozenset(), frozenset()
        pos, neg = flags_tested(test)
        pick = self.companions.get
        return (frozenset().union(*(pick(f, frozenset()) for f in pos)),
                frozenset().union(*(pick(f, frozenset()) for f in neg)))

    def _lambda(self, node: ast.Lambda) -> None:
        for default in (*node.args.defaults, *node.args.kw_defaults):
            if default is not None:
                self.expr(default)
        saved = self.enter(Scope("function", self.scope, parameters(node.args)))
        self.import_time = False
        self.expr(node.body)
        self.leave(saved)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        generators = node.generators
        self.expr(generators[0].iter)
        saved = self.enter(Scope("function", self.scope))
        for index, generator in enumerate(generators):
            if index:
                self.expr(generator.iter)
            self.expr(generator.target)
            for test in generator.ifs:
                self.expr(test)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.expr(part)
        self.leave(saved)


_EXPRESSIONS: dict[type, Callable[[Any, Any], None]] = {
    ast.Constant: lambda walker, node: None,
    **dict.fromkeys((ast.Subscript, ast.BinOp, ast.Compare, ast.UnaryOp, ast.Tuple, ast.List, ast.Set, ast.Starred,
                     ast.Slice, ast.JoinedStr, ast.FormattedValue, ast.Await, ast.NamedExpr, ast.Yield, ast.YieldFrom),
                    ExpressionWalker.children),
    ast.Dict: ExpressionWalker._dict,
    ast.Name: ExpressionWalker._name,
    ast.Attribute: ExpressionWalker._attribute,
    ast.Call: ExpressionWalker._call,
    ast.BoolOp: ExpressionWalker._boolop,
    ast.IfExp: ExpressionWalker._ifexp,
    ast.Lambda: ExpressionWalker._lambda,
    ast.ListComp: ExpressionWalker._comprehension,
    ast.SetComp: ExpressionWalker._comprehension,
    ast.GeneratorExp: ExpressionWalker._comprehension,
    ast.DictComp: ExpressionWalker._comprehension,
}
