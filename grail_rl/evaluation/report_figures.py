"""The PNG figures of ``grail-rl report``, drawn with matplotlib's object API (no display, no global state).

Each figure takes the complete evaluations only; the partial ones it leaves out are named in its footer, so
no figure shows a number from a partial run. Every file is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.files import atomic_output

DPI = 110


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GrailError("grail-rl report draws its figures with matplotlib: pip install 'grail-rl[report]'") from None
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Any, path: Path, left_out: Sequence[Any]) -> None:
    if left_out:
        names = "; ".join(f"{e.label} / {e.set_name}" for e in left_out)
        fig.text(0.01, 0.0, f"left out, PARTIAL: {names}", fontsize=7, color="firebrick", va="bottom", wrap=True)
    with atomic_output(path, "wb", encoding=None) as fh:
        fig.savefig(fh, format="png")


def draw_all(entries: Sequence[Any], out: Path) -> list[tuple[str, str]]:
    """Draw every figure that has data into ``out``; (file name, caption) of each."""
    complete = [e for e in entries if e.complete]
    partial = [e for e in entries if not e.complete]
    drawn: list[tuple[str, str]] = []
    for name, (caption, draw) in FIGURES.items():
        fig = draw(complete)
        if fig is not None:
            _save(fig, out / name, partial)
            drawn.append((name, caption))
    return drawn


def _below(rate: dict[str, Any]) -> float:
    """The interval's extent below the value (never negative: a Wilson bound can miss it by a rounding)."""
    return max(rate["value"] - rate["ci95"][0], 0.0)


def _above(rate: dict[str, Any]) -> float:
    return max(rate["ci95"][1] - rate["value"], 0.0)


def _key(e: Any) -> str:
    return f"{e.label}\n{e.set_name}"


def accuracy(entries: Sequence[Any]) -> Any:
    if not entries:
        return None
    entries = sorted(entries, key=lambda e: (e.set_name, e.label))  # each set's models and baselines together
    fig = _figure(9, 0.8 + 0.45 * len(entries))
    ax = fig.add_subplot()
    ys = list(range(len(entries)))[::-1]
    for y, e in zip(ys, entries, strict=True):
        acc = e.accuracy
        degenerate = bool(e.data.get("degenerate"))
        ax.barh(y, acc["value"], color="steelblue" if not e.data.get("meta", {}).get("baseline") else "silver",
                hatch="//" if degenerate else None, edgecolor="black" if degenerate else None)  # fmt: skip
        ax.errorbar(acc["value"], y, xerr=[[_below(acc)], [_above(acc)]], color="black", capsize=3)
        best = e.data.get("best_baseline")
        if best:
            ax.plot([best["value"]] * 2, [y - 0.4, y + 0.4], color="firebrick", linestyle="--")
        label = f"{acc['value']:.3f} (n={acc['n']})" + (" DEGENERATE" if degenerate else "")
        ax.text(1.01, y, label, va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yticks(ys, [_key(e) for e in entries], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("next-click accuracy (blue: a model, grey: a baseline; hatched: DEGENERATE, one answer almost "
                  "everywhere; red dashes: best trivial rule)")
    return fig


def accuracy_by_study(entries: Sequence[Any]) -> Any:
    rows = [(e, study, part) for e in entries for study, part in sorted(e.data["breakdowns"]["study"].items())]
    if not rows:
        return None
    fig = _figure(8, 0.5 + 0.4 * len(rows))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    for y, (_, _, part) in zip(ys, rows, strict=True):
        acc = part["accuracy"]
        ax.errorbar(acc["value"], y, xerr=[[_below(acc)], [_above(acc)]],
                    fmt="o", color="steelblue", capsize=3)  # fmt: skip
    ax.set_yticks(ys, [f"{e.label} / {e.set_name} / {study} (n={part['n']})" for e, study, part in rows], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    return fig


def _by_set(entries: Sequence[Any]) -> dict[str, list[Any]]:
    sets: dict[str, list[Any]] = {}
    for e in entries:
        sets.setdefault(e.set_name, []).append(e)
    return dict(sorted(sets.items()))


def _panels(count: int, width: float, height: float) -> tuple[Any, int]:
    cols = min(2, count)
    rows = (count + cols - 1) // cols
    return _figure(width * cols, height * rows), cols


def by_gold_position(entries: Sequence[Any]) -> Any:
    """One panel per set: accuracy (with its interval) by the position the viewer clicked, one line per model."""
    sets = {name: [e for e in group if e.data["breakdowns"].get("gold_position")] for name, group in _by_set(entries).items()}
    sets = {name: group for name, group in sets.items() if group}
    if not sets:
        return None
    fig, cols = _panels(len(sets), 6, 4.2)
    for i, (set_name, group) in enumerate(sets.items()):
        ax = fig.add_subplot((len(sets) + cols - 1) // cols, cols, i + 1)
        shift = 0.6 / max(len(group), 1)
        for k, e in enumerate(group):
            parts = e.data["breakdowns"]["gold_position"]
            xs = sorted(parts, key=int)
            acc = [parts[x]["accuracy"] for x in xs]
            ax.errorbar([int(x) - 0.3 + shift * (k + 0.5) for x in xs], [a["value"] for a in acc],
                        yerr=[[_below(a) for a in acc], [_above(a) for a in acc]],
                        marker="o", capsize=2, label=e.label)  # fmt: skip
        counts = [{x: p["n"] for x, p in e.data["breakdowns"]["gold_position"].items()} for e in group]
        ns = counts[0]
        same = all(c == ns for c in counts)  # N under a position only when every line has the same rows there
        positions = sorted({x for c in counts for x in c}, key=int)
        ax.set_xticks([int(x) for x in positions], [f"{x}\n(n={ns[x]})" if same else x for x in positions])
        ax.set_title(set_name, fontsize=9)
        ax.set_xlabel("position of the viewer's click")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    return fig


def positions(entries: Sequence[Any]) -> Any:
    """One panel per set and slate size (the sizes with the most rows, at most three per set): the viewers'
    click positions as bars, each model's or baseline's predicted positions as a line."""
    panels: dict[tuple[str, str, str], list[tuple[Any, dict[str, Any]]]] = {}
    for e in entries:
        sizes = e.data.get("fidelity", {}).get("positions", {}).get("by_slate_size", {})
        for size, part in sizes.items():
            if part.get("model") is not None:
                # Sets of one name from different runs share a panel only when their viewers' clicks are the same.
                panels.setdefault((e.set_name, size, json.dumps(part["human"])), []).append((e, part))
    chosen: list[tuple[tuple[str, str, str], list[tuple[Any, dict[str, Any]]]]] = []
    for set_name in sorted({key[0] for key in panels}):
        sizes = sorted((key for key in panels if key[0] == set_name), key=lambda k: -panels[k][0][1]["rows"])[:3]
        chosen += [(key, panels[key]) for key in sorted(sizes, key=lambda k: int(k[1]))]
    if not chosen:
        return None
    cols = min(3, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig = _figure(4.5 * cols, 3.6 * rows)
    for i, ((set_name, size, _), series) in enumerate(chosen):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs = list(range(1, int(size) + 1))
        ax.bar(xs, series[0][1]["human"], color="navajowhite", edgecolor="darkorange", label="viewers' clicks")
        for e, part in series:
            ax.plot(xs, part["model"], marker="o", label=f"{e.label} (JSD {part['jsd']:.3f})")
        ax.set_title(f"{set_name}: {size} options, n={series[0][1]['rows']}", fontsize=9)
        ax.set_xticks(xs)
        ax.set_ylim(0, 1)
        ax.set_xlabel("position")
        ax.legend(fontsize=6)
    return fig


def reliability(entries: Sequence[Any]) -> Any:
    """One panel per set: per confidence bin, the top choice's accuracy against its mean confidence; the marker's
    area is the bin's share of rows, so a bin of three rows does not look like a finding."""
    sets = {name: [e for e in group if e.data.get("calibration", {}).get("reliability")] for name, group in _by_set(entries).items()}
    sets = {name: group for name, group in sets.items() if group}
    if not sets:
        return None
    fig, cols = _panels(len(sets), 5.5, 5)
    for i, (set_name, group) in enumerate(sets.items()):
        ax = fig.add_subplot((len(sets) + cols - 1) // cols, cols, i + 1)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        for e in group:
            cal = e.data["calibration"]
            points = cal["reliability"]
            line = ax.plot([p["confidence"] for p in points], [p["accuracy"] for p in points], alpha=0.6,
                           label=f"{e.label} (ECE {cal['ece']:.3f}, n={cal['n']})")[0]  # fmt: skip
            ax.scatter([p["confidence"] for p in points], [p["accuracy"] for p in points], color=line.get_color(),
                       s=[8 + 300 * p["rows"] / cal["n"] for p in points])  # fmt: skip
        ax.set_title(set_name, fontsize=9)
        ax.set_xlabel("mean confidence of the top choice")
        ax.set_ylabel("accuracy of the top choice")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    return fig


def _runs(entries: Sequence[Any]) -> list[Path]:
    runs: list[Path] = []
    for e in entries:
        if e.run is not None and e.run not in runs:
            runs.append(e.run)
    return runs


def _curves_figure(runs: list[Path], read: Any, ylabel: str) -> Any:
    curves = [(run, read(run)) for run in runs]
    curves = [(run, found) for run, found in curves if found]
    if not curves:
        return None
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    for run, found in curves:
        for name, points in found.items():
            ax.plot([s for s, _ in points], [v for _, v in points], label=f"{run.name}: {name}")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return fig


def reward_curves(entries: Sequence[Any]) -> Any:
    from grail_rl.training.summary import reward_curves as read

    return _curves_figure(_runs(entries), read, "mean reward")


def discriminator_curves(entries: Sequence[Any]) -> Any:
    from grail_rl.training.summary import discriminator_curves as read

    return _curves_figure(_runs(entries), read, "value")


# file name -> (caption, the function that draws it from the complete evaluations)
FIGURES = {
    "accuracy.png": ("Accuracy with 95 % intervals per model or baseline and set; dashes: the best trivial rule", accuracy),
    "accuracy_by_study.png": ("Accuracy by study with 95 % intervals", accuracy_by_study),
    "accuracy_by_gold_position.png": ("Accuracy by the position of the viewer's click", by_gold_position),
    "positions.png": ("Predicted against viewers' position distribution, per slate size", positions),
    "reliability.png": ("Reliability: mean confidence of the top choice against its accuracy, per bin", reliability),
    "rewards.png": ("Reward curves during training (metrics.jsonl)", reward_curves),
    "discriminator.png": ("The discriminator's health during training (GRAIL runs)", discriminator_curves),
}
