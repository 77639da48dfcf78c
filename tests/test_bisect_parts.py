"""`harness bisect`'s parts: refs and candidates, cell ids, step verdicts, the resumable state, sources."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from harness.bisect.envs import CandidateError, EnvSpec, _unpack, package_root
from harness.bisect.origins import Commits
from harness.bisect.probes import classify, parse_cell_id
from harness.bisect.refs import BisectInputError, PipIndex, commits, distribution, releases, split_ref
from harness.bisect.state import STATE_FILE, BisectState, Identity, Step, load, resume, save
from harness.boot.venvs import VenvRecipe, ensure_recipe
from harness.config.matrix import Cell
from tests.bisectpkgs import toyrt_wheel

RUNTIMES = ("hf", "sglang", "vllm")
IDENT = Identity("cell", "hf-cpu-tiny-llama-none", ("weight_parity",), "pypi:toyrt", "/py")


@pytest.mark.parametrize(("cell_id", "cell"), [
    ("hf-cpu-tiny-llama-none", Cell("hf", "cpu", "tiny-llama", "none")),
    ("sglang-npu-glm-4.7-flash-sharded_gpu-bf16-tp2", Cell("sglang", "npu", "glm-4.7-flash", "sharded_gpu", "bfloat16", 2)),
    ("vllm-cuda-m-cpu_offload_gb:4-tp4", Cell("vllm", "cuda", "m", "cpu_offload_gb:4", "float32", 4)),
])
def test_cell_ids_parse_back_to_their_cells(cell_id, cell):
    assert parse_cell_id(cell_id, RUNTIMES) == cell
    assert cell.id == cell_id


@pytest.mark.parametrize("bad", ["trt-cpu-m-none", "hf-tpu-m-none", "hf-cpu-none"])
def test_a_malformed_cell_id_says_the_expected_shape(bad):
    with pytest.raises(BisectInputError, match="RUNTIME-DEVICE-MODEL-OFFLOAD"):
        parse_cell_id(bad, RUNTIMES)


def rec(check, status, reason="", attempt=1, cell="c"):
    return {"cell": cell, "check": check, "status": status, "reason": reason, "attempt": attempt}


@pytest.mark.parametrize(("records", "verdict"), [
    ([rec("a", "pass"), rec("b", "pass")], "good"),
    ([rec("a", "pass"), rec("b", "fail", "parity: 1/21 tensors")], "bad"),
    ([rec("a", "error", "request-error: connection reset"), rec("b", "pass")], "bad"),  # broke on a request
    ([rec("a", "error", "boot-crash: RuntimeError: x (exit code 1)"), rec("b", "error", "boot-crash: x")], "skip"),
    ([rec("a", "error", "boot-timeout: no answer in 180 s"), rec("b", "pass")], "skip"),
    ([rec("a", "error", "preflight: cannot import sglang"), rec("b", "pass")], "skip"),
    ([rec("a", "skipped", "checkpoint absent"), rec("b", "pass")], "skip"),
    ([rec("a", "pass")], "skip"),  # b has no result: the run stopped early
    ([rec("a", "pass"), rec("b", "pass"), rec("a", "fail", attempt=2), rec("a", "fail", cell="other")], "good"),
])
def test_a_step_verdict_comes_from_its_results(records, verdict):
    got, reason = classify(records, "c", ("a", "b"))
    assert got == verdict, reason
    assert reason


def test_refs_name_their_distribution_once():
    assert split_ref("sglang==0.5.9") == ("sglang", "0.5.9")
    assert split_ref("0.5.9") == (None, "0.5.9")
    assert distribution("sglang==0.5.9", "0.5.12", None, "x") == "sglang"
    assert distribution("0.5.9", "0.5.12", None, "transformers") == "transformers"
    assert distribution("0.5.9", "0.5.12", "toyrt", "transformers") == "toyrt"
    with pytest.raises(BisectInputError, match="different distributions"):
        distribution("a==1", "b==2", None, None)
    with pytest.raises(BisectInputError, match="NAME==VERSION"):
        split_ref("==1.0")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("wheels")
    for v in ("1.0", "1.1", "1.2rc1", "1.2", "1.3"):
        toyrt_wheel(d, v, "none")
    return d


def test_release_candidates_come_from_the_index_oldest_first(wheels):
    index = PipIndex(find_links=(str(wheels),), no_index=True)
    assert releases("toyrt", "1.0", "toyrt==1.3", index) == ("1.0", "1.1", "1.2", "1.3")
    pre = PipIndex(find_links=(str(wheels),), no_index=True, pre=True)
    assert releases("toyrt", "1.1", "1.2", pre) == ("1.1", "1.2rc1", "1.2")


@pytest.mark.parametrize(("good", "bad", "words"), [
    ("1.1", "1.1", "same version"),
    ("1.3", "1.0", "swap them"),
    ("0.9", "1.3", "not on the package index"),
    ("abc", "1.3", "not a version"),
])
def test_release_refs_that_cannot_be_bisected_say_the_fix(wheels, good, bad, words):
    with pytest.raises(BisectInputError, match=words):
        releases("toyrt", good, bad, PipIndex(find_links=(str(wheels),), no_index=True))


def test_an_unknown_distribution_says_to_check_the_name_and_index(wheels):
    with pytest.raises(BisectInputError, match="no versions of 'nosuchpkg'"):
        releases("nosuchpkg", "1.0", "1.1", PipIndex(find_links=(str(wheels),), no_index=True))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_commit_candidates_follow_the_first_parent_line(tmp_path):
    repo = tmp_path / "src"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for i in range(4):
        (repo / "f.txt").write_text(str(i))
        git(repo, "add", ".")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"c{i}")
        if i == 0:
            git(repo, "tag", "v0")
    shas = git(repo, "rev-list", "--reverse", "HEAD").split()
    refs, labels = commits(repo, "v0", "main")
    assert refs == tuple(shas)
    assert labels[shas[0]].startswith("v0 (") and labels[shas[-1]].startswith("main (")
    assert labels[shas[1]].endswith("c1")
    with pytest.raises(BisectInputError, match="not a commit"):
        commits(repo, "v9", "main")
    with pytest.raises(BisectInputError, match="not an ancestor"):
        commits(repo, "main", "v0")
    with pytest.raises(BisectInputError, match="same commit"):
        commits(repo, "main", "HEAD")


def test_an_sdist_unpacks_and_its_package_is_found(tmp_path):
    pkg = tmp_path / "build" / "sglang-0.1.0" / "python" / "sglang"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    sdist = tmp_path / "sglang-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        tf.add(tmp_path / "build" / "sglang-0.1.0", arcname="sglang-0.1.0")
    _unpack(sdist, tmp_path / "tree")
    assert package_root(tmp_path / "tree", "sglang") == tmp_path / "tree" / "sglang-0.1.0" / "python"
    with pytest.raises(CandidateError, match="no vllm/ directory"):
        package_root(tmp_path / "tree", "vllm")


def step(ref, verdict="good"):
    return Step(ref, verdict, "why", "/env", 1.0, 2.0)


def test_state_round_trips_and_resumes_only_the_same_bisection(tmp_path):
    path = tmp_path / STATE_FILE
    state = BisectState(IDENT, ("1.0", "1.1", "1.2"), (step("1.1"),), {"1.1": "toyrt==1.1"})
    save(path, state, {"conclusion": {"status": "running"}})
    assert load(path) == (state, "")
    resumed, note = resume(path, IDENT, ("1.0", "1.1", "1.2"), {})
    assert resumed.steps == state.steps and "1 step(s) already done" in note
    other = Identity("cell", "hf-cpu-tiny-llama-none", ("accuracy",), "pypi:toyrt", "/py")
    fresh, note = resume(path, other, ("1.0", "1.1", "1.2"), {})
    assert fresh.steps == () and "another bisection" in note
    narrowed, _ = resume(path, IDENT, ("1.0", "1.2"), {})  # refs outside the new range are dropped
    assert narrowed.steps == ()


def test_an_unreadable_state_is_not_resumed_and_says_why(tmp_path):
    path = tmp_path / STATE_FILE
    path.write_text("{not json")
    state, note = resume(path, IDENT, ("1.0", "1.1"), {})
    assert state.steps == () and "unreadable" in note
    path.write_text(json.dumps({"schema": "harness.bisect/0"}))
    assert "schema" in resume(path, IDENT, ("1.0", "1.1"), {})[1]


def test_the_pinned_recipes_keep_their_keys_so_their_venvs_are_not_rebuilt():
    recipe = VenvRecipe("sglang", "0.5.23", ("sglang==0.5.23",))
    before_bisect = {"name": "sglang", "version": "0.5.23", "install": ["sglang==0.5.23"], "remove": []}
    assert recipe.key == hashlib.sha256(json.dumps(before_bisect, sort_keys=True).encode()).hexdigest()[:12]
    assert VenvRecipe("sglang", "0.5.23", ("sglang==0.5.23",), base_python="/py").key != recipe.key


def test_a_layered_venv_sees_its_paths_first_then_the_base_packages(tmp_path):
    shadow = tmp_path / "src" / "packaging"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("SHADOW = 'from the checkout'\n")
    recipe = VenvRecipe("layered", "1", (), base_python=sys.executable, paths=(str(tmp_path / "src"),))
    python = ensure_recipe(recipe, tmp_path / "venv", log=lambda _: None)
    ask = "import packaging, yaml, sys; print(packaging.SHADOW, yaml.__name__, sys.prefix)"
    out = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True).stdout.split()
    assert out[:3] == ["from", "the", "checkout"]  # the path entry shadows the base's packaging
    assert out[3] == "yaml"  # a package only the base has
    assert out[4] == str(tmp_path / "venv")
    assert ensure_recipe(recipe, tmp_path / "venv", log=lambda m: pytest.fail(f"rebuilt: {m}")) == python  # cached


def test_a_commit_runs_from_its_own_tree_in_a_venv_layered_on_the_base(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_VENV_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "rt"
    (repo / "python" / "toyrt_src").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for n in (1, 2):
        (repo / "python" / "toyrt_src" / "__init__.py").write_text(f"REVISION = {n}\n")
        git(repo, "add", ".")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"r{n}")
    first, second = git(repo, "rev-list", "--reverse", "HEAD").split()
    origin = Commits(repo, "toyrt_src", EnvSpec(sys.executable, PipIndex()))
    ask = "import toyrt_src, yaml; print(toyrt_src.REVISION)"
    for sha, revision in ((first, "1"), (second, "2")):
        python = origin.python(sha, lambda _: None)
        assert subprocess.run([str(python), "-c", ask], capture_output=True, text=True, check=True).stdout.strip() == revision
    assert origin.tree(first, lambda _: None).name == "python"  # the package's directory was found in python/
