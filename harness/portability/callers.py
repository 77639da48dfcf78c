"""Where private functions and methods can run, judged from the places that refer to them."""

from __future__ import annotations

import collections
from collections.abc import Mapping

from harness.portability.facts import ModuleFacts
from harness.portability.platforms import ALL, NONE, PlatformSet


def _private(name: str) -> bool:
    short = name.rpartition(".")[2]
    return short.startswith("_") and not short.endswith("__")


def owner_reach(facts: ModuleFacts) -> dict[str, PlatformSet]:
    """Platforms each referenced private function or method (``C._m``) can run on.

    A private helper runs only where something refers to it::

        if _is_cuda:
            self._forward_impl = self._forward_fused   # -> C._forward_fused runs on {cuda}

    Public names, and private ones nothing here refers to, are left out (they may
    be called from anywhere). The result is the least fixpoint over the references.
    """
    refs: dict[str, list[tuple[PlatformSet, str | None]]] = collections.defaultdict(list)
    for name, ctx, owner in facts.func_refs:
        if _private(name):
            refs[name].append((ctx, owner))
    for cls in facts.classes:
        for method, ctx, owner in cls.method_refs:
            if _private(method):
                refs[f"{cls.qualname}.{method}"].append((ctx, owner))
    return fixed_point(refs)


def owner_flags(facts: ModuleFacts) -> dict[str, frozenset[str]]:
    """Names a tested availability flag vouches for at every reference of a method (``C.m``)::

        if quant is not None and _rmsnorm_quant_available:
            return self.forward_fused(x)          # -> C.forward_fused: {"_rmsnorm_quant"}

    Only methods something in the class refers to; the greatest fixpoint over the references.
    """
    refs: dict[str, list[tuple[frozenset[str], str | None]]] = collections.defaultdict(list)
    for cls in facts.classes:
        for method, names, owner in cls.method_flags:
            refs[f"{cls.qualname}.{method}"].append((names, owner))
    every = frozenset().union(*(n for sites in refs.values() for n, _ in sites))
    safe = dict.fromkeys(refs, every)
    for _ in range(len(refs) + 1):
        changed = False
        for name, sites in refs.items():
            found = every
            for names, owner in sites:
                found &= names | (safe.get(owner, frozenset()) if owner is not None else frozenset())
            if found != safe[name]:
                safe[name], changed = found, True
        if not changed:
            break
    return {name: names for name, names in safe.items() if names}


def table_choices(facts: ModuleFacts) -> dict[str, str]:
    """Methods referred to only as values of dispatch tables, with the keys that choose them.

    ``{"flashinfer": self._forward_flashinfer}[backend]``: ``C._forward_flashinfer`` runs only when
    something picks ``"flashinfer"`` -> ``{"C._forward_flashinfer": "'flashinfer'"}``.
    """
    keys: dict[str, list[str | None]] = collections.defaultdict(list)
    for cls in facts.classes:
        for method, key in cls.method_keys:
            keys[f"{cls.qualname}.{method}"].append(key)
    return {name: ", ".join(sorted({repr(k) for k in found if k is not None}))
            for name, found in keys.items() if None not in found}


def function_reach(modules: Mapping[str, ModuleFacts]) -> dict[str, PlatformSet]:
    """Platforms each public module-level function (``pkg.mod.f``) can run on, from every in-tree reference.

    ``from pkg.mod import f`` in other modules counts, so a helper whose every call site, in any
    module, sits under ``if _is_npu:`` runs on {npu}. Decorated functions (registered ops) and
    functions nothing here refers to are left out: they may be called from anywhere.
    """
    refs: dict[str, list[tuple[PlatformSet, str | None]]] = collections.defaultdict(list)
    for facts in modules.values():
        for name, ctx, owner in facts.func_refs:
            refs[f"{facts.module}.{name}"].append((ctx, f"{facts.module}.{owner}" if owner else None))
        for target, ctx, owner in facts.import_refs:
            refs[target].append((ctx, f"{facts.module}.{owner}" if owner else None))
    known = {f"{m.module}.{name}" for m in modules.values() for name in m.functions
             if not _private(name) and name not in m.decorated}
    refs = {name: sites for name, sites in refs.items() if name in known}
    return {name: where for name, where in fixed_point(refs).items() if where != ALL}


def run_platforms(reach: Mapping[str, PlatformSet], owner: str | None, ctx: PlatformSet) -> PlatformSet:
    """Narrow a use's platforms by where its enclosing function can be called."""
    return ctx if owner is None else ctx & reach.get(owner, ALL)


def fixed_point(refs: dict[str, list]) -> dict[str, PlatformSet]:
    """The platforms that reach each name: the union over its call sites of the site's guard and
    the platforms that reach the site's owner, iterated until nothing changes."""
    reach: dict[str, PlatformSet] = dict.fromkeys(refs, NONE)
    for _ in range(len(refs) + 1):
        changed = False
        for name, sites in refs.items():
            found = NONE
            for ctx, owner in sites:
                found |= ctx & reach.get(owner, ALL) if owner is not None else ctx
            if found != reach[name]:
                reach[name], changed = found, True
        if not changed:
            break
    return reach
