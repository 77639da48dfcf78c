"""Turn ``if`` tests into platform conditions: ``not _is_npu and _use_aiter`` -> Condition."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from harness.portability.platforms import ALL, Condition, PlatformSet
from harness.portability.profile import RuntimeProfile
from harness.portability.syntax import Functions, dotted_name, self_parameter


class NameClassifier:
    """Decide which identifiers are platform predicates, using a runtime profile.

    ``_is_cuda`` -> exact {cuda}; ``_use_aiter_gfx95`` -> implies {rocm};
    ``is_in_breakable_cuda_graph`` -> not a predicate ("graph" is excluded).
    """

    def __init__(self, profile: RuntimeProfile) -> None:
        self._exact = dict(profile.exact_predicates)
        self._tokens = [(re.compile(p), ps) for p, ps in profile.platform_tokens.items()]
        self._name_tokens = [(re.compile(p), ps) for p, ps in profile.name_tokens.items()]
        self._prefixes = frozenset(profile.predicate_prefixes)
        self._suffixes = frozenset(profile.predicate_suffixes)
        self._exclude = frozenset(profile.predicate_exclude)
        self._name_exclude = frozenset(profile.name_exclude)
        self._packages = [  # "has_deep_ep" and "is_aiter_available" name their package
            (re.compile(re.escape(name.split(".")[0].replace("_", ""))), platforms)
            for name, platforms in profile.accelerator_packages.items()
        ]
        self._cache: dict[str, Condition | None] = {}
        self._name_cache: dict[str, PlatformSet | None] = {}

    def predicate(self, name: str) -> Condition | None:
        """The condition a name stands for, or None when it is not a platform predicate."""
        if name not in self._cache:
            self._cache[name] = self._classify(name)
        return self._cache[name]

    def exact(self, dotted: str) -> Condition | None:
        """A dotted name listed as an exact predicate (``torch.version.hip``)."""
        platforms = self._exact.get(dotted)
        return None if platforms is None else Condition.exact(platforms)

    def name_platforms(self, name: str) -> PlatformSet | None:
        """Platforms a module, class or function name is about (``FlashInferAttnBackend`` -> {cuda})."""
        if name not in self._name_cache:
            tokens = split_name(name)
            found = None if self._name_exclude.intersection(tokens) else _match(tokens, self._name_tokens)
            self._name_cache[name] = found
        return self._name_cache[name]

    def _classify(self, name: str) -> Condition | None:
        key = name.lstrip("_")
        if key in self._exact:
            return Condition.exact(self._exact[key])
        tokens = split_name(key)
        if not tokens or self._exclude.intersection(tokens):
            return None
        if tokens[0] not in self._prefixes and tokens[-1] not in self._suffixes:
            return None
        found = _match(tokens, self._tokens)
        if found is None and (tokens[0] == "has" or tokens[-1] in _AVAILABILITY):
            found = _match(tokens, self._packages)  # has_deep_ep(), is_aiter_available()
        return None if found is None else Condition.implies(found)


_AVAILABILITY = frozenset({"available", "installed", "supported"})
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+\d*|[A-Z]+\d*|\d+")


def split_name(name: str) -> list[str]:
    """Lower-case words of an identifier: ``_use_aiter_gfx95`` -> [use, aiter, gfx95]."""
    return [w.lower() for part in name.split("_") for w in _WORDS.findall(part)]


def _match(tokens: list[str], table: list[tuple[re.Pattern[str], PlatformSet]]) -> PlatformSet | None:
    """Platforms named by any token, or by two adjacent tokens joined (``deep``+``gemm``)."""
    words = [*tokens, *(a + b for a, b in zip(tokens, tokens[1:], strict=False))]
    found = [ps for word in words for rx, ps in table if rx.fullmatch(word)]
    return frozenset().union(*found) if found else None


class ConditionEvaluator:
    """Evaluate a test expression to a Condition, given module and ``self`` aliases."""

    def __init__(
        self,
        classifier: NameClassifier,
        profile: RuntimeProfile,
        aliases: Mapping[str, Condition] | None = None,
    ) -> None:
        self.classifier = classifier
        self.profile = profile
        self.aliases: dict[str, Condition] = dict(aliases or {})
        self.locals: dict[str, Condition] = {}  # ``use_triton = not _is_cuda or ...`` in a function
        self.self_name: str | None = None
        self.self_attrs: Mapping[str, Condition] = {}
        self._receivers = frozenset(profile.predicate_receivers)
        self.functions: dict[str, PlatformSet] = {}  # predicate functions by local name (``guards.py``)

    def learn_module_aliases(self, stmts: list[ast.stmt], ctx: PlatformSet = ALL,
                             seen: dict[str, Condition] | None = None) -> None:
        """Learn ``_is_cuda = is_cuda()``-style module-level aliases, in source order.

        A name assigned on several paths gets the union of what each path can make
        it; platforms no path assigns it on count as unknown. A name the module
        assigns from non-platform values (``use_deepep = True`` in a try block) is
        not a predicate, whatever its name suggests.
        """
        seen = {} if seen is None else seen
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                cond = self.evaluate(stmt.test)
                self.learn_module_aliases(stmt.body, ctx & cond.may_true, seen)
                self.learn_module_aliases(stmt.orelse, ctx & cond.may_false, seen)
            elif isinstance(stmt, ast.Try):
                for part in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                    self.learn_module_aliases(part, ctx, seen)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if len(targets) == 1 and isinstance(name := targets[0], ast.Name):
                    cond = self.evaluate(stmt.value).within(ctx)
                    seen[name.id] = seen[name.id].join(cond) if name.id in seen else cond
                    self.aliases[name.id] = seen[name.id].covering()

    def class_aliases(self, node: ast.ClassDef) -> dict[str, Condition]:
        """``self.use_aiter = _use_aiter`` at the top of a method, or a class attribute that is a pure
        platform test (``supports_fused = _is_cuda``), makes ``self.<name>`` a predicate."""
        found: dict[str, Condition] = {}
        for method in node.body:
            if (isinstance(method, ast.Assign) and len(method.targets) == 1
                    and isinstance(target := method.targets[0], ast.Name)):
                found[target.id] = self.evaluate(method.value)
            if not isinstance(method, Functions):
                continue
            me = self_parameter(method)
            for stmt in method.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(target := stmt.targets[0], ast.Attribute)
                        and isinstance(target.value, ast.Name) and target.value.id == me):
                    cond = self.evaluate(stmt.value)
                    found[target.attr] = found[target.attr].join(cond) if target.attr in found else cond
        return {k: v for k, v in found.items() if v.is_platform}

    def evaluate(self, node: ast.expr) -> Condition:
        """The platforms where ``node`` may be true and where it may be false."""
        found = self._evaluate(node)
        return Condition.unknown() if found is None else found

    def _evaluate(self, node: ast.expr) -> Condition | None:
        if isinstance(node, ast.Name):
            name = node.id
            return self.locals.get(name) or self.aliases.get(name) or self.classifier.predicate(name)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, called=False)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.evaluate(node.operand).negate()
        if isinstance(node, ast.BoolOp):
            parts = [self.evaluate(v) for v in node.values]
            result = parts[0]
            for part in parts[1:]:
                result = result.both(part) if isinstance(node.op, ast.And) else result.either(part)
            return result
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return Condition.constant(node.value)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.NamedExpr):
            return self._evaluate(node.value)
        return None

    def _attribute(self, node: ast.Attribute, *, called: bool) -> Condition | None:
        dotted = dotted_name(node)
        if dotted is not None and (exact := self.classifier.exact(dotted)) is not None:
            return exact
        receiver = node.value.id if isinstance(node.value, ast.Name) else None
        if receiver is not None and receiver == self.self_name and node.attr in self.self_attrs:
            return self.self_attrs[node.attr]
        if not called:
            return self.classifier.predicate(node.attr) if receiver in self._receivers else None
        found = self.classifier.predicate(node.attr)
        owner = dotted_name(node.value)
        hinted = self.classifier.name_platforms(owner.replace(".", "_")) if owner else None
        if hinted is None:
            return found
        # rocm_aiter_ops.is_enabled(): whatever the method says, it is only true on ROCm
        return Condition.implies(hinted) if found is None else found.both(Condition.implies(hinted))

    def _call(self, node: ast.Call) -> Condition | None:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in self.functions:
                return Condition(self.functions[func.id], ALL)
            return self.classifier.predicate(func.id)
        if isinstance(func, ast.Attribute):
            if func.attr == "find_spec" and node.args:
                return self._find_spec(node.args[0])
            return self._attribute(func, called=True)
        return None

    def _find_spec(self, arg: ast.expr) -> Condition | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found = self.profile.available_on(arg.value)
            return None if found is None else Condition.implies(found[1])
        return None

    def _compare(self, node: ast.Compare) -> Condition | None:
        if len(node.ops) != 1:
            return None
        op, right = node.ops[0], node.comparators[0]
        if not isinstance(right, ast.Constant) or right.value not in (None, True, False):
            return None
        left = self.evaluate(node.left)
        truthy = (right.value is None) == isinstance(op, (ast.IsNot, ast.NotEq))
        if right.value is False:
            truthy = isinstance(op, (ast.IsNot, ast.NotEq))
        return left if truthy else left.negate()
