"""What ``rrx report`` says of its runs' provenance (``rrx.provenance``): where they differ, and a warning where the
results shown in one row (the seeds of one configuration, with the evaluations added to them) came from different
library versions or rrx commits."""

from __future__ import annotations

import json
import logging
from collections import defaultdict

from rrx.record import Record

log = logging.getLogger(__name__)


def facts(record: Record) -> dict[str, str]:
    """A record's provenance flattened to ``{"torch": "2.4.1", "rrx commit": "ab12cd3 (dirty)", "device": ...}``."""
    block = record.provenance or {}
    out: dict[str, str] = {}
    source = block.get("rrx") or {}
    if source:
        out["rrx"] = str(source.get("version"))
        commit = source.get("commit")
        out["rrx commit"] = "unknown" if not commit else f"{commit[:7]}{' (dirty)' if source.get('dirty') else ''}"
    for name, version in (block.get("versions") or {}).items():
        out[name] = str(version)
    if block.get("device"):
        out["device"] = str(block["device"])
    return out


# a difference in these within one row makes its mean ± std mix two programs
CODE = ("rrx", "rrx commit", "python", "torch", "torchvision", "timm", "captum", "transformers", "numpy")


def results(rows: list[Record]) -> list[Record]:
    """Every record behind ``rows`` (the report's runs): each run and the evaluations merged into it."""
    return [record for row in rows for record in (row, *row.merged)]


def configuration(record: Record) -> str:
    """A table row: the run's identity (as the report labelled it) without its seed."""
    run = {k: v for k, v in record.run.items() if k != "seed"}
    return json.dumps({"task": record.task, **run}, sort_keys=True, default=str)


def provenance_lines(rows: list[Record]) -> list[str]:
    """report.md's provenance section over every result behind ``rows``: the values all share, a table of the ones
    that differ (with how many results had each), and a warning per row whose results differ in ``CODE``; results
    without a provenance block (written by an rrx before it) are counted; none with one: no section."""
    every = results(rows)
    known = [r for r in every if r.provenance]
    if not known:  # all written by an rrx before provenance: their report is what it was
        return []
    lines = ["## Provenance", ""]
    if len(known) < len(every):
        lines += [
            f"{len(every) - len(known)} of {len(every)} results have no provenance (an older rrx wrote them).",
            "",
        ]
    values: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in known:
        for key, value in facts(record).items():
            values[key][value] += 1
    shared = {k: next(iter(v)) for k, v in values.items() if len(v) == 1 and sum(v.values()) == len(known)}
    if shared:
        lines += [f"All {len(known)} results: " + ", ".join(f"{k} {v}" for k, v in shared.items()) + ".", ""]
    differ = {k: v for k, v in values.items() if k not in shared}
    if differ:
        lines += ["Where the results differ (results per value):", "", "| | values |", "|:--|:--|"]
        lines += [
            f"| {k} | {'; '.join(f'{value} ({n})' for value, n in sorted(v.items()))} |" for k, v in differ.items()
        ]
        lines.append("")
    for warning in mixed_versions(rows):
        log.warning("%s", warning)
        lines += [f"> **Warning:** {warning}", ""]
    return lines


def mixed_versions(rows: list[Record]) -> list[str]:
    """One warning per configuration (a table row: seeds averaged together, with their evaluations) whose results
    differ in ``CODE``; results without provenance are not compared."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for row in rows:
        groups[configuration(row)] += [r for r in (row, *row.merged) if r.provenance]
    warnings = []
    for group in groups.values():
        seen = [facts(r) for r in group]
        differing = [key for key in CODE if len({f.get(key) for f in seen}) > 1]
        if differing:
            run = group[0].run
            what = "; ".join(f"{key}: {', '.join(sorted({str(f.get(key)) for f in seen}))}" for key in differing)
            warnings.append(
                f"the {len(group)} results of {run.get('architecture')} {run.get('method')} on {run.get('dataset')} "
                f"shown in one row came from different code ({what})"
            )
    return warnings
