"""Leak audit: does the data give the answer away?

For normalised rows it measures (1) where the gold sits in the slate, per slate size, against uniform;
(2) metadata asymmetry: how often the gold lacks a channel, a duration or engagement counts compared with
the other options, and how often it is the *only* option lacking them; (3) the accuracy of trivial rules
("always position k", "always the last option", "the option missing metadata") against random choice.

A rule that beats random by :data:`LEAK_MARGIN` or more is reported as a LEAK (the original gun data: the
clicked video was appended last without metadata, ~95 % last). A smaller but clear advantage is reported
as a position SKEW, which real display orders can have (the wage data: gold = 1 in ~43 %).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LEAK_MARGIN = 0.30
SKEW_MARGIN = 0.10
METADATA_FIELDS = ("channel_title", "duration", "view_count", "like_count", "comment_count")


def _missing_meta(item: Mapping[str, Any]) -> int:
    return sum(item.get(key) is None for key in METADATA_FIELDS)


@dataclass
class AuditReport:
    """The audit's measurements, its trivial-rule accuracies and the warnings they raise."""

    rows: int = 0
    positions: dict[int, list[int]] = field(default_factory=dict)  # slate size -> gold count per position
    gold_missing: dict[str, int] = field(default_factory=dict)
    other_missing: dict[str, int] = field(default_factory=dict)
    other_options: int = 0
    gold_only_missing: dict[str, int] = field(default_factory=dict)
    rule_hits: dict[str, float] = field(default_factory=dict)
    chance: float = 0.0

    def add(self, row: Mapping[str, Any]) -> None:
        slate, gold = row["slate"], row["gold_index"]
        n = len(slate)
        self.rows += 1
        self.positions.setdefault(n, [0] * n)[gold - 1] += 1
        self.chance += 1 / n
        for key in METADATA_FIELDS:
            missing = [item.get(key) is None for item in slate]
            self.gold_missing[key] = self.gold_missing.get(key, 0) + missing[gold - 1]
            self.other_missing[key] = self.other_missing.get(key, 0) + sum(missing) - missing[gold - 1]
            if missing[gold - 1] and sum(missing) == 1:
                self.gold_only_missing[key] = self.gold_only_missing.get(key, 0) + 1
        self.other_options += n - 1
        self._hit("always the last option", gold == n)
        for k in range(1, 6):
            self._hit(f"always position {k}", gold == min(k, n))
        missing = [_missing_meta(item) for item in slate]
        most = max(missing)
        # The one option with the least metadata, else a random pick (expected 1/n).
        unique = most > 0 and missing.count(most) == 1
        self._hit("the option missing metadata", gold == missing.index(most) + 1 if unique else 1 / n)

    def _hit(self, rule: str, value: float) -> None:
        self.rule_hits[rule] = self.rule_hits.get(rule, 0.0) + float(value)

    def rules(self) -> dict[str, float]:
        return {rule: hits / self.rows for rule, hits in self.rule_hits.items()} if self.rows else {}

    def random_accuracy(self) -> float:
        return self.chance / self.rows if self.rows else 0.0

    def findings(self) -> list[tuple[str, str]]:
        """(level, message) pairs; level is LEAK, SKEW or ok."""
        if not self.rows:
            return [("ok", "no valid rows to audit")]
        random_acc = self.random_accuracy()
        rules = self.rules()
        best = max(rules, key=lambda r: rules[r])
        margin = rules[best] - random_acc
        out: list[tuple[str, str]] = []
        if margin >= LEAK_MARGIN:
            beating = ", ".join(f"'{r}' {acc:.1%}" for r, acc in rules.items() if acc - random_acc >= LEAK_MARGIN)
            out.append((
                "LEAK",
                f"trivial rules beat random choice ({random_acc:.1%}) by a wide margin: {beating}; the data gives "
                "the answer away and a model trained on it learns the rule, not the viewer",
            ))  # fmt: skip
        elif margin >= SKEW_MARGIN:
            out.append((
                "SKEW",
                f"gold positions are skewed: '{best}' scores {rules[best]:.1%} against {random_acc:.1%} random "
                "(real display orders can do this; compare models with this baseline, not with random)",
            ))  # fmt: skip
        for key, only in sorted(self.gold_only_missing.items()):
            share = only / self.rows
            if share >= 0.25:
                out.append((
                    "LEAK",
                    f"in {share:.1%} of rows the gold is the only option without {key}: metadata asymmetry marks the answer",
                ))  # fmt: skip
        return out or [("ok", f"no trivial rule beats random ({random_acc:.1%}) by {SKEW_MARGIN:.0%} or more")]

    def as_dict(self) -> dict[str, Any]:
        positions = {}
        for n, counts in sorted(self.positions.items()):
            total = sum(counts)
            expected = total / n
            chi2 = sum((c - expected) ** 2 / expected for c in counts) if expected else 0.0
            positions[str(n)] = {
                "rows": total,
                "gold_share": [round(c / total, 4) for c in counts],
                "uniform_share": round(1 / n, 4),
                "chi2": round(chi2, 2),
                "dof": n - 1,
            }
        return {
            "rows": self.rows,
            "random_accuracy": round(self.random_accuracy(), 4),
            "gold_position_by_slate_size": positions,
            "metadata": {
                key: {
                    "gold_missing_rate": round(self.gold_missing.get(key, 0) / max(self.rows, 1), 4),
                    "others_missing_rate": round(self.other_missing.get(key, 0) / max(self.other_options, 1), 4),
                    "gold_only_missing_rate": round(self.gold_only_missing.get(key, 0) / max(self.rows, 1), 4),
                }
                for key in METADATA_FIELDS
            },
            "trivial_rules": {rule: round(acc, 4) for rule, acc in self.rules().items()},
            "findings": [{"level": level, "message": msg} for level, msg in self.findings()],
        }

    def lines(self) -> list[str]:
        d = self.as_dict()
        out = [f"rows: {d['rows']}   random choice: {d['random_accuracy']:.1%}", "", "gold position by slate size:"]
        for n, info in d["gold_position_by_slate_size"].items():
            shares = " ".join(f"{s:6.1%}" for s in info["gold_share"])
            out.append(f"  {n} options ({info['rows']:>6} rows): {shares}   uniform {info['uniform_share']:.1%}"
                       f"   chi2 {info['chi2']} (dof {info['dof']})")  # fmt: skip
        out += ["", "metadata missing (gold / other options / gold is the only one):"]
        for key, info in d["metadata"].items():
            out.append(f"  {key:<14} {info['gold_missing_rate']:6.1%} / {info['others_missing_rate']:6.1%} / "
                       f"{info['gold_only_missing_rate']:6.1%}")  # fmt: skip
        out += ["", "trivial rules (accuracy):"]
        out += [f"  {rule:<30} {acc:6.1%}" for rule, acc in d["trivial_rules"].items()]
        out.append("")
        out += [f"{f['level']}: {f['message']}" if f["level"] != "ok" else f"ok: {f['message']}" for f in d["findings"]]
        return out


def audit_rows(rows: Iterable[Mapping[str, Any]]) -> AuditReport:
    """Audit normalised rows (see :func:`grail_rl.data.schema.normalize_row`)."""
    report = AuditReport()
    for row in rows:
        report.add(row)
    return report
