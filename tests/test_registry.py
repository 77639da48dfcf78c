"""The registry: Protocol validation, entry-point groups, and the errors a third party sees.

Installed distributions are real ones: a ``*.dist-info`` folder with METADATA and entry_points.txt
beside their module, on sys.path, read by importlib.metadata as pip's installs are. Each test uses
a group of its own, so the harness's registries are never touched.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from harness.checks import CHECKS
from harness.config.options import add_options
from harness.errors import ConfigError
from harness.portability.profile import PROFILES, RuntimeProfile
from harness.registry import Registry, RegistryError, UnknownEntryError, lacking, protocol_members
from harness.runtimes import RUNTIMES
from harness.runtimes.base import RuntimeAdapter

_groups = itertools.count()

ADAPTER_SOURCE = '''
from harness.runtimes.base import Capabilities
class Adapter:
    name = "{name}"
    offload_modes = ("none",)
    capabilities = Capabilities("a test runtime")
    default_boot_timeout_s = 10.0
    def na_reason(self, cell, card, *, simulated=False): return None
    def check_na_reason(self, check, cell, card): return None
    def launch(self, ctx): raise NotImplementedError
    def client(self, base_url, cell_id): raise NotImplementedError
    def fingerprint(self, server_info): return {{}}
ADAPTER = Adapter()
'''


def install(root: Path, dist: str, group: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """A distribution ``dist`` 1.0 under ``root``: its modules and its entry points in ``group``."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def group(request: pytest.FixtureRequest) -> str:
    return f"harness.test_registry_{next(_groups)}_{request.node.name.partition('[')[0][-20:]}"


def runtimes(group: str) -> Registry[RuntimeAdapter]:
    registry: Registry[RuntimeAdapter] = Registry("runtime", protocol=RuntimeAdapter, group=group,
                                                  what="runtime adapter", instantiate=True)
    registry.register("hf", "harness.runtimes.hf:ADAPTER", aliases=("transformers",))
    return registry


def test_an_installed_entry_is_listed_without_importing_it_and_loaded_on_lookup(site, group) -> None:
    module = f"thirdparty_{group.replace('.', '_')}"
    install(site, "bar", group, {"foo": f"{module}:ADAPTER"}, {module: ADAPTER_SOURCE.format(name="foo")})
    registry = runtimes(group)
    assert registry.names() == ["hf", "foo"] and "foo" in registry
    assert registry.source("foo").distribution == "bar" and module not in sys.modules
    assert registry.get("foo").name == "foo" and module in sys.modules
    source = registry.source("foo")
    assert (source.distribution, source.version, source.group, source.builtin) == ("bar", "1.0", group, False)
    assert registry.source("transformers").builtin


def test_a_class_named_by_the_entry_point_is_instantiated(site, group) -> None:
    module = f"classentry_{group.replace('.', '_')}"
    install(site, "bar", group, {"foo": f"{module}:Adapter"}, {module: ADAPTER_SOURCE.format(name="foo")})
    adapter = runtimes(group).get("foo")
    assert not isinstance(adapter, type) and adapter.launch.__self__ is adapter


def test_a_class_that_cannot_be_instantiated_names_its_distribution(site, group) -> None:
    module = f"needsargs_{group.replace('.', '_')}"
    source = ADAPTER_SOURCE.format(name="foo") + "    def __init__(self, url): self.url = url\n"
    install(site, "bar", group, {"foo": f"{module}:Adapter"}, {module: source.replace("ADAPTER = Adapter()\n", "")})
    with pytest.raises(RegistryError, match=r"'foo' from package bar 1.0 .* failed to load: TypeError: .*url"):
        runtimes(group).get("foo")


def test_an_entry_that_lacks_protocol_members_is_refused_with_what_it_lacks(site, group) -> None:
    module = f"incomplete_{group.replace('.', '_')}"
    source = ADAPTER_SOURCE.format(name="foo").replace("    def launch(self, ctx): raise NotImplementedError\n", "")
    source = source.replace('    offload_modes = ("none",)\n', "")
    install(site, "bar", group, {"foo": f"{module}:Adapter"}, {module: source})
    with pytest.raises(RegistryError) as err:
        runtimes(group).get("foo")
    assert str(err.value) == (
        f"runtime adapter 'foo' from package bar 1.0 (entry point {group}: foo = {module}:Adapter) lacks "
        "attribute 'offload_modes' and launch(), which RuntimeAdapter requires; see docs/extending.md")


def test_a_broken_entry_point_names_its_distribution_not_a_bare_import_error(site, group) -> None:
    module = f"broken_{group.replace('.', '_')}"
    install(site, "bar", group, {"foo": f"{module}:ADAPTER"}, {module: "import no_such_module_anywhere\n"})
    registry = runtimes(group)
    assert "foo" in registry.names()  # listing does not import it
    with pytest.raises(RegistryError) as err:
        registry.get("foo")
    assert not isinstance(err.value, ImportError) and isinstance(err.value.__cause__, ImportError)
    message = str(err.value)
    assert message.startswith(f"runtime adapter 'foo' from package bar 1.0 (entry point {group}: "
                              f"foo = {module}:ADAPTER) failed to load: ModuleNotFoundError: "
                              "No module named 'no_such_module_anywhere'")
    assert message.endswith("fix that package or uninstall it (pip uninstall bar)")


@pytest.mark.parametrize("name", ["hf", "transformers"])
def test_a_name_clash_with_a_built_in_is_refused_with_the_fix(site, group, name) -> None:
    install(site, "bar", group, {name: "nowhere:ADAPTER"}, {})
    registry = runtimes(group)
    with pytest.raises(RegistryError, match=f"runtime adapter '{name}' from package bar 1.0 .* clashes with the "
                                            f"built-in runtime '{name}'.*; rename the entry point in bar's "
                                            f"pyproject.toml \\(e.g. 'bar-{name}'\\)"):
        registry.names()
    with pytest.raises(RegistryError):  # still refused on the next lookup, never half-loaded
        registry.get("hf")


def test_two_distributions_claiming_one_name_are_both_named(site, group) -> None:
    install(site, "bar", group, {"foo": "nowhere:ADAPTER"}, {})
    install(site, "baz", group, {"foo": "elsewhere:ADAPTER"}, {})
    with pytest.raises(RegistryError, match=r"from package ba[rz] 1.0 .* clashes with the runtime 'foo' from package "
                                            r"ba[rz] 1.0"):
        runtimes(group).names()


def test_an_entry_whose_name_differs_from_its_entry_point_is_refused(site, group) -> None:
    module = f"misnamed_{group.replace('.', '_')}"
    install(site, "bar", group, {"foo": f"{module}:ADAPTER"}, {module: ADAPTER_SOURCE.format(name="other")})
    with pytest.raises(RegistryError, match="runtime adapter 'foo' from package bar .* calls itself 'other'"):
        runtimes(group).get("foo")


def test_a_built_in_lazy_entry_goes_through_the_same_validation() -> None:
    registry: Registry[RuntimeAdapter] = Registry("runtime", protocol=RuntimeAdapter, what="runtime adapter")
    registry.register("fake", "harness.runtimes.base:LaunchSpec")
    with pytest.raises(RegistryError, match=r"runtime adapter 'fake' \(built in: harness.runtimes.base:LaunchSpec\) "
                                            r"lacks attribute 'name', attribute 'offload_modes'"):
        registry.get("fake")


def test_an_unknown_name_is_a_config_error_and_a_key_error_listing_the_installed_ones(site, group) -> None:
    install(site, "bar", group, {"foo": "nowhere:ADAPTER"}, {})
    with pytest.raises(UnknownEntryError) as err:
        runtimes(group).get("nosuch")
    assert isinstance(err.value, ConfigError) and isinstance(err.value, KeyError)
    assert str(err.value) == "unknown runtime 'nosuch'; known: hf, foo"


def test_registering_a_name_twice_is_refused() -> None:
    registry: Registry[object] = Registry("widget")
    registry.register("a", object(), aliases=("b",))
    with pytest.raises(RegistryError, match="widget 'b' is registered twice; pick another name"):
        registry.register("b", object())


def test_protocol_members_name_attributes_and_methods() -> None:
    members = protocol_members(RuntimeAdapter)
    assert {"name", "offload_modes", "default_boot_timeout_s"} <= {n for n, method in members.items() if not method}
    assert {"na_reason", "check_na_reason", "launch", "client", "fingerprint"} <= {n for n, m in members.items() if m}
    assert lacking(object(), RuntimeAdapter)[:1] == ["attribute 'name'"]


def test_the_harness_registries_read_their_entry_point_groups_and_hold_valid_built_ins() -> None:
    assert (RUNTIMES.group, CHECKS.group, PROFILES.group) == (
        "harness.runtimes", "harness.checks", "harness.portability_profiles")
    for registry in (RUNTIMES, CHECKS, PROFILES):
        for name in registry.names():
            entry = registry.get(name)  # validated against the registry's Protocol on the way
            assert lacking(entry, registry.protocol) == [] and entry.name == name  # type: ignore[arg-type]
    assert {"hf", "sglang", "vllm"} <= set(RUNTIMES.names()) and RUNTIMES.get("transformers") is RUNTIMES.get("hf")
    assert {"accuracy", "weight_parity", "logprob_parity", "mode_active"} <= set(CHECKS.names())


def test_an_unknown_portability_profile_still_lists_the_known_runtimes() -> None:
    with pytest.raises(KeyError, match="unknown portability profile 'tgi'; known runtimes: sglang, vllm"):
        PROFILES.get("tgi")
    assert isinstance(PROFILES.get("vllm"), RuntimeProfile)


def test_an_installed_portability_profile_is_validated_against_the_profile_class(site, group) -> None:
    module = f"profile_{group.replace('.', '_')}"
    source = ("from harness.portability.profile import RuntimeProfile\n"
              "PROFILE = RuntimeProfile(name='npuserve', distribution='npuserve', packages=('npuserve.models',),"
              " accelerator_packages={})\nNOT_A_PROFILE = object()\n")
    install(site, "npuserve-harness", group, {"npuserve": f"{module}:PROFILE", "junk": f"{module}:NOT_A_PROFILE"},
            {module: source})
    profiles: Registry[RuntimeProfile] = Registry("portability profile", protocol=RuntimeProfile, group=group)
    profiles.register("sglang", PROFILES.get("sglang"))
    assert profiles.get("npuserve").top_package == "npuserve"
    with pytest.raises(RegistryError, match="portability profile 'junk' from package npuserve-harness 1.0 .* lacks "
                                            "attribute 'name', .*with_overrides\\(\\).* which RuntimeProfile requires"):
        profiles.get("junk")


class _HelpParser:
    """Collects the help of each option, as pytest's parser would show it."""

    def __init__(self) -> None:
        self.help: dict[str, str] = {}

    def getgroup(self, *_: object) -> _HelpParser:
        return self

    def addoption(self, *names: str, **kw: object) -> None:
        self.help[names[0]] = str(kw.get("help", ""))


def test_the_runtimes_option_lists_the_registry_s_names_when_given_them() -> None:
    parser = _HelpParser()
    add_options(parser, known_runtimes=RUNTIMES.names())
    assert parser.help["--runtimes"] == f"comma list overriding the matrix (default: hf; known: {', '.join(RUNTIMES)})"
    assert "known:" not in parser.help["--devices"]
