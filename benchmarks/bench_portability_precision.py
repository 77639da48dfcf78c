"""Precision of the portability check's severities on released SGLang, against a labelled sample.

    python benchmarks/bench_portability_precision.py                      # 0.5.10.post1 and 0.5.21
    python benchmarks/bench_portability_precision.py --versions 0.5.21 0.5.23 --json out.json

For each version it takes the released wheel (``pip download --no-deps sglang==X``, cached under
``~/.cache/llm-harness/wheels``; since 0.5.11 the wheels are binary per Python version, the Python
source is inside), unpacks ``sglang/`` beside it, runs the static check (``--source``, no probe) and
prints the findings per severity and rule. Then it re-scores the labelled sample
(``benchmarks/portability_labels.yaml``: finding key, verdict TRUE / LATENT / FALSE, one line of
evidence): the share of labelled *breaks* findings that are TRUE, every TRUE finding ranked below
*breaks* (demoted), labelled findings the check no longer reports, and *breaks* findings nobody has
labelled yet. Targets are printed, never asserted: >= 80 % of labelled *breaks* TRUE, no TRUE demoted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.portability.check import PortabilityOptions, run_portability  # noqa: E402

LABELS = Path(__file__).resolve().with_name("portability_labels.yaml")
CACHE = Path.home() / ".cache" / "llm-harness" / "wheels"
DEFAULT_VERSIONS = ("0.5.10.post1", "0.5.21")
Verdict = Literal["TRUE", "LATENT", "FALSE"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
TARGET = 0.80


@dataclasses.dataclass(frozen=True)
class Label:
    """One reviewed finding: the version it was read in, its key, the verdict and why."""

    version: str
    key: str
    verdict: Verdict
    evidence: str

    @classmethod
    def from_mapping(cls, data: Any, where: str) -> Label:
        """Validate one YAML entry."""
        if not isinstance(data, Mapping) or set(data) != {"version", "key", "verdict", "evidence"}:
            raise ValueError(f"{where}: a label is a mapping with exactly version, key, verdict, evidence; got {data!r}")
        if data["verdict"] not in VERDICTS:  # unquoted TRUE / FALSE read as YAML booleans land here too
            raise ValueError(f"{where}: verdict must be one of {list(VERDICTS)} (quoted), got {data['verdict']!r}")
        if not str(data["evidence"]).strip():
            raise ValueError(f"{where}: evidence must say in one line why the verdict holds")
        return cls(str(data["version"]), str(data["key"]), data["verdict"], str(data["evidence"]).strip())


def load_labels(path: Path) -> list[Label]:
    """The labelled sample: ``labels: [{version, key, verdict, evidence}, ...]``."""
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("labels") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a 'labels' list")
    return [Label.from_mapping(item, f"{path}[{i}]") for i, item in enumerate(entries)]


@dataclasses.dataclass(frozen=True)
class Score:
    """The labelled sample re-scored against one run per version."""

    breaks_labelled: int
    breaks_true: int
    demoted: tuple[str, ...]  # TRUE findings ranked below breaks: "version key (severity)"
    gone: tuple[str, ...]  # labelled findings the check no longer reports
    unlabelled_breaks: tuple[str, ...]
    by_verdict: Mapping[str, Mapping[str, int]]  # severity -> verdict -> count

    @property
    def precision(self) -> float | None:
        """Share of labelled *breaks* findings that are TRUE (None when none is labelled)."""
        return self.breaks_true / self.breaks_labelled if self.breaks_labelled else None

    def target_met(self) -> bool:
        """>= 80 % of labelled breaks TRUE and no TRUE finding demoted below breaks."""
        return self.precision is not None and self.precision >= TARGET and not self.demoted


def score(labels: Iterable[Label], runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Score:
    """Compare each label with the finding of the same key in its version's run.

    A key can stand for several findings (one per line); it ranks as its worst severity.
    """
    severity = {version: _worst_by_key(findings) for version, findings in runs.items()}
    labelled = {(lab.version, lab.key): lab for lab in labels if lab.version in runs}
    table: dict[str, Counter[str]] = {s: Counter() for s in ("breaks", "option", "latent")}
    demoted, gone = [], []
    for (version, key), lab in sorted(labelled.items()):
        found = severity[version].get(key)
        if found is None:
            gone.append(f"{version} {key} ({lab.verdict})")
            continue
        table[found][lab.verdict] += 1
        if lab.verdict == "TRUE" and found != "breaks":
            demoted.append(f"{version} {key} ({found})")
    unlabelled = [f"{v} {k}" for v, keys in severity.items() for k, s in sorted(keys.items())
                  if s == "breaks" and (v, k) not in labelled]
    breaks = table["breaks"]
    return Score(sum(breaks.values()), breaks["TRUE"], tuple(demoted), tuple(gone), tuple(unlabelled),
                 {s: dict(c) for s, c in table.items()})


def _worst_by_key(findings: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    order = ("breaks", "option", "latent")
    worst: dict[str, str] = {}
    for f in findings:
        if f.get("status") == "suppressed":
            continue
        current = worst.get(f["key"])
        if current is None or order.index(f["severity"]) < order.index(current):
            worst[f["key"]] = f["severity"]
    return worst


def source_of(version: str, cache: Path) -> Path:
    """``<cache>/sglang-<version>`` holding ``sglang/``, unpacked from the (downloaded) wheel if needed."""
    target = cache / f"sglang-{version}"
    if (target / "sglang").is_dir():
        return target
    wheels = sorted(cache.glob(f"sglang-{version}-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"sglang=={version}", "-d", str(cache),
                        "-q"], check=True)
        wheels = sorted(cache.glob(f"sglang-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel of sglang {version} in {cache} after pip download; check the version")
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [n for n in wheel.namelist() if n.startswith(("sglang/", f"sglang-{version}.dist-info/"))]
        wheel.extractall(target, members)
    return target


def check(version: str, cache: Path, jobs: int | None) -> dict[str, Any]:
    """The static check's result record for one released version."""
    options = PortabilityOptions.create(runtime="sglang", source=str(source_of(version, cache)), probe=False, jobs=jobs)
    return run_portability(options)


def report(results: Mapping[str, Mapping[str, Any]], result: Score) -> list[str]:
    """The printed figures."""
    lines = []
    for version, record in results.items():
        counts, analysis = record["counts"], record["analysis"]
        rules = Counter((f["severity"], f["rule"]) for f in record["findings"])
        lines.append(f"sglang {version}: {counts['findings']} findings, by severity "
                     + ", ".join(f"{s} {n}" for s, n in counts["by_severity"].items())
                     + f" ({analysis['files']} files, {analysis['seconds']:.1f}s)")
        lines.extend(f"    {s:<6} {rule:<22} {n}" for (s, rule), n in sorted(rules.items()))
    precision = "n/a" if result.precision is None else f"{result.precision:.0%}"
    lines.append(f"labelled sample: {sum(sum(v.values()) for v in result.by_verdict.values())} findings re-scored")
    for severity, verdicts in result.by_verdict.items():
        lines.append(f"    ranked {severity:<6}: " + ", ".join(f"{v} {verdicts.get(v, 0)}" for v in VERDICTS))
    lines.append(f"breaks precision: {result.breaks_true}/{result.breaks_labelled} TRUE = {precision} "
                 f"(target >= {TARGET:.0%})")
    lines.append(f"TRUE demoted below breaks: {len(result.demoted)} (target 0)")
    lines.extend(f"    {d}" for d in result.demoted)
    lines.extend(f"labelled but no longer reported: {g}" for g in result.gone)
    lines.extend(f"breaks finding not labelled yet: {u}" for u in result.unlabelled_breaks)
    lines.append("targets met" if result.target_met() else "targets NOT met")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the check per version, re-score the labels, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(DEFAULT_VERSIONS), metavar="X")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"wheel cache (default {CACHE})")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write counts and the score here")
    args = parser.parse_args(argv)
    labels = load_labels(args.labels)
    results = {v: check(v, args.cache, args.jobs) for v in args.versions}
    result = score(labels, {v: r["findings"] for v, r in results.items()})
    print("\n".join(report(results, result)))
    if args.json:
        args.json.write_text(json.dumps({
            "versions": {v: r["counts"] for v, r in results.items()},
            "score": {**dataclasses.asdict(result), "precision": result.precision, "target_met": result.target_met()},
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
