"""PromQL checks without a Prometheus server: which series an expression reads, checked against the metrics the
code defines, and whether it parses (promtool parses every expression of a rule file it checks)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from deploy.procfile import ROOT
from tests.deploy.tools import run, tool

SOURCES = ("wire", "engine", "sequencer", "client", "persistence", "gateways", "feeds", "frontdoor")
_DEFINED = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"(\w+)\"")
_KEYWORDS = {"by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset", "group_left", "group_right"}


def defined_series() -> set[str]:
    """Every series name the processes can export (prometheus_client adds _total to a counter, _bucket, _sum and
    _count to a histogram, _created to both), plus Prometheus's own ``up``."""
    names = {"up"}
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            for kind, name in _DEFINED.findall(path.read_text()):
                if kind == "Counter":
                    base = name.removesuffix("_total")
                    names |= {base + "_total", base + "_created"}
                elif kind in ("Histogram", "Summary"):
                    names |= {name + s for s in ("_bucket", "_sum", "_count", "_created")}
                else:
                    names.add(name)
    return names


def recorded_series() -> set[str]:
    rules = (ROOT / "deploy" / "prometheus" / "rules" / "recording.yml").read_text()
    return set(re.findall(r"^\s*- record: (\S+)$", rules, re.MULTILINE))


def series_in(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left after removing strings, label matchers, range
    selectors, grouping clauses, function calls and keywords."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = re.findall(r"[A-Za-z_:][\w:]*(?!\s*\()\b(?!\s*\()", text)
    return {name for name in found if name not in _KEYWORDS and not re.fullmatch(r"\d+\w*", name)}


def parse_errors(exprs: list[str], tmp: Path) -> str:
    """promtool's complaint about any expression that does not parse, '' when all do (each is wrapped as a
    recording rule of a throw-away rule file)."""
    rules = {
        "groups": [{"name": "parse", "rules": [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    path = tmp / "exprs.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = run(tool("promtool"), "check", "rules", str(path))
    return "" if result.returncode == 0 else result.stdout + result.stderr
