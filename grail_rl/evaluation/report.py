"""An evaluation report that knows whether it is complete, and refuses to pass a partial run off as one.

The original project reported wage accuracy from partial evaluation runs whose row counts disagreed
(DOMAIN.md section 6). A report here records how many rows were expected and how many were evaluated;
:meth:`EvalReport.require_complete` raises unless they agree, and the summary of a partial report says
PARTIAL in its title. Reports are written as ``eval-NAME.json`` (or ``eval-NAME.partial.json``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.evaluation.baselines import TRIVIAL_RULES, FitRows, baselines, rows_of
from grail_rl.evaluation.choice_logprob import calibration
from grail_rl.evaluation.fidelity import position_fidelity
from grail_rl.evaluation.metrics import Prediction, breakdowns, participant_bootstrap, summarise
from grail_rl.evaluation.opinion import opinion_accuracy
from grail_rl.files import atomic_output, write_json_atomically

# A model that gives one answer to at least this share of rows is flagged: its accuracy is a rule's.
DEGENERATE_SHARE = 0.9


class IncompleteEvaluationError(GrailError):
    """An evaluation covered fewer rows than its split holds."""


@dataclass
class EvalReport:
    name: str
    expected_rows: int
    predictions: list[Prediction]
    baselines: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    turing: dict[str, Any] | None = None  # the trained discriminator's AUC of real against model choices
    train_rows: FitRows | None = None  # what the fitted baselines learned from (the opinion majority too)

    @property
    def complete(self) -> bool:
        return len(self.predictions) == self.expected_rows

    def require_complete(self) -> EvalReport:
        if not self.complete:
            raise IncompleteEvaluationError(
                f"evaluation '{self.name}' covered {len(self.predictions)} of {self.expected_rows} rows; "
                "a partial run is not reported as a result (rerun it to completion)"
            )
        return self

    def answers(self) -> dict[str, int]:
        """How often the model gave each answer: option numbers in order, then ``unparsed``."""
        counts = Counter("unparsed" if p.parsed_index is None else str(p.parsed_index) for p in self.predictions)
        numbers = sorted((k for k in counts if k != "unparsed"), key=int)
        return {k: counts[k] for k in numbers} | ({"unparsed": counts["unparsed"]} if "unparsed" in counts else {})

    def gold_positions(self) -> dict[str, int]:
        counts = Counter(p.gold_index for p in self.predictions)
        return {str(k): counts[k] for k in sorted(counts)}

    def degenerate(self) -> dict[str, Any] | None:
        """The one answer given to almost every row (>= :data:`DEGENERATE_SHARE`), or None."""
        n = len(self.predictions)
        if n < 10:
            return None
        answer, count = Counter(p.parsed_index for p in self.predictions).most_common(1)[0]
        if count / n < DEGENERATE_SHARE:
            return None
        return {"answer": answer, "rows": count, "of": n, "share": count / n}

    def best_baseline(self) -> tuple[str, dict[str, Any]] | None:
        """The strongest trivial rule (random, positions, always first/last): what skill must beat."""
        rules = [(name, self.baselines[name]) for name in TRIVIAL_RULES if name in self.baselines]
        return max(rules, key=lambda item: item[1].get("value", 0.0)) if rules else None

    def as_dict(self) -> dict[str, Any]:
        best = self.best_baseline()
        return {
            "name": self.name,
            "complete": self.complete,
            "expected_rows": self.expected_rows,
            "evaluated_rows": len(self.predictions),
            "overall": summarise(self.predictions),
            "participant_bootstrap": participant_bootstrap(self.predictions),
            "answers": self.answers(),
            "gold_positions": self.gold_positions(),
            "degenerate": self.degenerate(),
            "best_baseline": {"name": best[0], **best[1]} if best else None,
            "breakdowns": breakdowns(self.predictions),
            "opinion": opinion_accuracy(
                self.predictions,
                self.train_rows.opinions if self.train_rows is not None else None,
                self.train_rows.source if self.train_rows is not None else "",
            ),
            "calibration": calibration(self.predictions),
            "fidelity": {"positions": position_fidelity(self.predictions)}
            | ({"turing_auc": self.turing} if self.turing is not None else {}),
            "baselines": self.baselines,
            "meta": self.meta,
        }

    def write(self, folder: Path) -> Path:
        path, preds = report_files(folder, self.name, complete=self.complete)
        with atomic_output(preds) as fh:  # predictions first: a report never points at missing rows
            for pred in self.predictions:
                fh.write(json.dumps(pred.as_dict()) + "\n")
        write_json_atomically(path, self.as_dict())
        return path


def report_files(folder: Path, name: str, *, complete: bool) -> tuple[Path, Path]:
    """The report ``eval-NAME[.partial].json`` and its ``eval-NAME[.partial].predictions.jsonl``."""
    stem = f"eval-{name}" + ("" if complete else ".partial")
    return folder / f"{stem}.json", folder / f"{stem}.predictions.jsonl"


def build_report(
    name: str,
    predictions: list[Prediction],
    *,
    expected_rows: int,
    train_rows: FitRows | None = None,
    synthetic_ceiling: float | None = None,
    meta: dict[str, Any] | None = None,
    other_data: bool = False,
    extra_baselines: dict[str, dict[str, Any]] | None = None,
) -> EvalReport:
    base = baselines(
        rows_of(predictions), train_rows=train_rows, synthetic_ceiling=synthetic_ceiling, other_data=other_data,
        extra=extra_baselines,
    )
    return EvalReport(name, expected_rows, predictions, base, dict(meta or {}), train_rows=train_rows)


def _pct(entry: dict[str, Any]) -> str:
    value = entry.get("value", 0.0)
    ci = entry.get("ci95")
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _shares(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    return " · ".join(f"{key} {count / total:.0%}" for key, count in counts.items())


def verdict_lines(data: dict[str, Any]) -> list[str]:
    """What the accuracy means: a constant answer is flagged, and the model is read against the strongest
    trivial rule, never against random alone."""
    lines = []
    accuracy = data["overall"]["accuracy"]
    parsed = data["overall"]["parsed_rate"]
    if parsed["n"] and parsed["k"] == 0 and data["meta"].get("decoding") not in ("choice-logprob", "baseline"):
        lines.append(
            f"  NO PARSABLE ANSWER: none of the {parsed['n']} outputs holds an answer the parser reads "
            "(<answer>k</answer>); the accuracy of 0 says nothing about the model's choices (its outputs are in the "
            "predictions file; --mode choice-logprob forces the answer format)"
        )
        return lines
    degenerate = data["degenerate"]
    if degenerate:
        answer = "no parseable answer" if degenerate["answer"] is None else f"option {degenerate['answer']}"
        lines.append(
            f"  DEGENERATE: the model gave {answer} on {degenerate['rows']} of {degenerate['of']} rows "
            f"({degenerate['share']:.0%}); that accuracy is what always answering it scores, not skill"
        )
    leak = data["baselines"].get("metadata_leak")
    frequent = data["baselines"].get("most_frequent_position", {}).get("value", 0.0)
    if leak is not None and leak["value"] > max(frequent, 0.5):
        lines.append(
            f"  LEAK: picking the one option without channel and length scores {leak['value']:.3f} here: these slates "
            "give the click away (DOMAIN.md section 2); any accuracy near it is the leak, not a simulation of viewers"
        )
    best = data["best_baseline"]
    if best is not None:
        # Beating a rule means the model's whole 95 % interval lies above the rule's accuracy; a point
        # estimate above it inside the interval is chance.
        if accuracy["ci95"][0] > best["value"]:
            verdict = "the model beats it (its 95 % interval lies above)"
        elif accuracy["value"] > best["value"]:
            verdict = "the model does NOT clearly beat it (its 95 % interval includes it)"
        else:
            verdict = "the model does NOT beat it"
        lines.append(f"  best trivial baseline  {best['name']} {_pct(best)}: {verdict}")
    return lines


def fidelity_lines(fidelity: dict[str, Any]) -> list[str]:
    """The position-distribution fidelity in one line: JSD per slate size (with its interval) and overall."""
    overall = fidelity["overall"]
    if "jsd" not in overall:
        return ["  position fidelity      no parsed answers to compare with the viewers' choices"]
    sizes = [
        f"{size} options {entry['jsd']:.3f} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}] (n={entry['rows']})"
        for size, entry in fidelity["by_slate_size"].items()
        if "jsd" in entry
    ]
    return [
        f"  position fidelity      JSD {overall['jsd']:.3f} against the viewers' clicks (0 = same distribution; a "
        f"uniform random pick: {overall['uniform_pick_jsd']:.3f})",
        f"    by slate size        {'; '.join(sizes)}",
    ]


def opinion_lines(opinion: dict[str, Any]) -> list[str]:
    """Opinion-direction accuracy beside its baselines, when any evaluated row has a known direction."""
    if not opinion.get("n"):
        return []
    majority = opinion["baselines"]["majority"]
    return [
        f"  opinion direction      {_pct(opinion['accuracy'])} (n={opinion['n']}; answered "
        f"{opinion['answered_rate']['value']:.0%}); always no_change {_pct(opinion['baselines']['always_no_change'])}, "
        f"always {majority['label']} {_pct(majority)} (fitted on {majority['fitted_on']})"
    ]


def summary_lines(report: EvalReport) -> list[str]:
    """A plain-text summary: model accuracy with its interval, what it means, and every baseline with where
    it was fitted."""
    data = report.as_dict()
    overall = data["overall"]
    state = "" if report.complete else f"  PARTIAL: {len(report.predictions)} of {report.expected_rows} rows"
    who = f" of baseline {data['meta']['baseline']}" if data["meta"].get("baseline") else ""
    lines = [f"evaluation{who} '{report.name}' ({overall['n']} rows){state}"]
    if data["meta"].get("fitted_on"):
        lines.append(f"  fitted on              {data['meta']['fitted_on']}")
    lines.append(f"  model accuracy         {_pct(overall['accuracy'])}")
    viewers = data["participant_bootstrap"]
    if "ci95" in viewers:
        lines.append(
            f"  viewer bootstrap       95 % [{viewers['ci95'][0]:.3f}, {viewers['ci95'][1]:.3f}] resampling the "
            f"{viewers['participants']:,} viewers ({viewers['rows']:,} rows with an id; {viewers['samples']} samples)"
        )
    lines += verdict_lines(data)
    lines.append(f"  model answers          {_shares(data['answers'])}")
    lines.append(f"  gold positions         {_shares(data['gold_positions'])}")
    lines += fidelity_lines(data["fidelity"]["positions"])
    turing = data["fidelity"].get("turing_auc")
    if turing is not None and "value" in turing:
        lines.append(
            f"  Turing AUC             {turing['value']:.3f} [{turing['ci95'][0]:.3f}, {turing['ci95'][1]:.3f}] (n={turing['n']}): "
            "the trained discriminator's AUC of the viewers' choices against the model's (0.5 = indistinguishable)"
        )
    decoding = data["meta"].get("decoding")
    forced = decoding in ("choice-logprob", "baseline")  # no text is parsed: parsed and format rates say nothing
    cal = data["calibration"]
    if forced and cal.get("n"):
        how = "choice-logprob, empty <think> forced" if decoding == "choice-logprob" else "the baseline's distribution"
        lines.append(
            f"  calibration            log-likelihood of the viewers' choices {cal['log_likelihood']:.3f} (uniform "
            f"{cal['uniform_log_likelihood']:.3f}), Brier {cal['brier']:.3f}, ECE {cal['ece']:.3f} (n={cal['n']}; "
            f"{how})"
        )
    elif not forced:
        lines.append(f"  parsed rate            {_pct(overall['parsed_rate'])}")
        lines.append(f"  format rate            {_pct(overall['format_rate'])}")
    for key, entry in data["baselines"].items():
        lines.append(f"  {key:<22} {_pct(entry)}  ({entry.get('note', '')})")
    lines += opinion_lines(data["opinion"])
    by_issue = data["breakdowns"]["issue"]
    if len(by_issue) > 1:
        for issue, entry in by_issue.items():
            lines.append(f"  issue {issue:<16} {_pct(entry['accuracy'])}  (n={entry['n']})")
    return lines
