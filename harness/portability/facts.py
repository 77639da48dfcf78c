"""What the walker records about one module: imports, bindings, uses, class attributes."""

from __future__ import annotations

import dataclasses

from harness.portability.platforms import NONE, PlatformSet


@dataclasses.dataclass(frozen=True)
class ImportSite:
    """One imported module (and, for ``from m import a``, the name ``a``)."""

    module: str
    name: str | None
    line: int
    ctx: PlatformSet
    import_time: bool
    guarded: bool
    conditional: bool = False
    owner: str | None = None  # enclosing top-level function or method, for a lazy import
    selected: PlatformSet = NONE  # platforms a platform test or dispatch method sends here

    @property
    def target(self) -> str:
        """The dotted name imported: ``sgl_kernel.silu_and_mul`` for ``from sgl_kernel import silu_and_mul``."""
        return f"{self.module}.{self.name}" if self.name else self.module


@dataclasses.dataclass(frozen=True)
class NameUse:
    """A read of a module-level name, with the platforms where the read can run.

    ``conditional`` is true when the read also sits under a test that is not about
    platforms (``if backend == "flashinfer":``), which static analysis cannot judge.
    """

    name: str
    line: int
    ctx: PlatformSet
    import_time: bool
    conditional: bool
    owner: str | None = None
    selected: PlatformSet = NONE  # platforms a platform test or dispatch method sends here


@dataclasses.dataclass(frozen=True)
class AttrUse:
    """A read of ``self.attr`` inside a method."""

    attr: str
    line: int
    ctx: PlatformSet
    conditional: bool
    owner: str | None = None
    selected: PlatformSet = NONE


# A reference to a function or method: (name, platforms, enclosing top-level function or method).
Ref = tuple[str, PlatformSet, "str | None"]


@dataclasses.dataclass
class ClassFacts:
    """Attribute stores and reads of one class, plus its bases as dotted names."""

    qualname: str
    line: int
    bases: tuple[str, ...]
    class_names: set[str] = dataclasses.field(default_factory=set)
    stores: dict[str, PlatformSet] = dataclasses.field(default_factory=dict)
    loads: list[AttrUse] = dataclasses.field(default_factory=list)
    methods: set[str] = dataclasses.field(default_factory=set)
    method_refs: list[Ref] = dataclasses.field(default_factory=list)
    # (method, names tested availability flags vouch for at the reference, enclosing method)
    method_flags: list[tuple[str, frozenset[str], str | None]] = dataclasses.field(default_factory=list)
    method_keys: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)  # (method, table key)
    init_platforms: PlatformSet | None = None  # where __init__ can return; None without one

    def store(self, attr: str, ctx: PlatformSet) -> None:
        """Record ``self.attr = ...`` running on ``ctx``."""
        self.stores[attr] = self.stores.get(attr, NONE) | ctx


@dataclasses.dataclass
class ModuleFacts:
    """Everything the rules need from one source file."""

    module: str
    path: str
    is_package: bool
    imports: list[ImportSite] = dataclasses.field(default_factory=list)
    bindings: dict[str, PlatformSet] = dataclasses.field(default_factory=dict)
    must_bindings: dict[str, PlatformSet] = dataclasses.field(default_factory=dict)  # bound whatever else holds
    uses: list[NameUse] = dataclasses.field(default_factory=list)
    functions: set[str] = dataclasses.field(default_factory=set)
    func_refs: list[Ref] = dataclasses.field(default_factory=list)
    import_refs: list[Ref] = dataclasses.field(default_factory=list)  # ("pkg.mod.f", where, owner) via an import
    decorated: set[str] = dataclasses.field(default_factory=set)  # module-level functions with decorators
    classes: list[ClassFacts] = dataclasses.field(default_factory=list)
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    star_ctx: PlatformSet = NONE
    predicate_functions: dict[str, PlatformSet] = dataclasses.field(default_factory=dict)
    markers: dict[int, str] = dataclasses.field(default_factory=dict)
    empty_markers: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None

    def bind(self, name: str, ctx: PlatformSet) -> None:
        """Record a module-level binding of ``name`` running on ``ctx``."""
        self.bindings[name] = self.bindings.get(name, NONE) | ctx

    def resolve(self, dotted: str) -> str:
        """Qualify a dotted name through this module's imports (``nn.Module`` -> ``torch.nn.Module``)."""
        head, _, rest = dotted.partition(".")
        if head in self.aliases:
            target = self.aliases[head]
            return f"{target}.{rest}" if rest else target
        return f"{self.module}.{dotted}"
