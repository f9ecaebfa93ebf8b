"""Baselines without a language model, each a predictor evaluated exactly like a model (``evaluate --baseline``).

Rules: ``random`` (a seeded uniform pick; its distribution is uniform), ``most_frequent_position``,
``always_first``, ``always_last``, and ``metadata_leak``: the option that alone lacks the channel and length the
others show (the gun data's leak, DOMAIN.md section 2), else the most frequent position.

Learned (scikit-learn, the ``baselines`` extra), over what the prompt shows of the viewer and the slate:

- ``knn_tfidf``: the k most similar training rows by tf-idf of the viewer's context (profile, survey, the
  current video, the history) vote, weighted by similarity, for the video they clicked; each option scores the
  votes for its title;
- ``logreg_tfidf``: logistic regression on (row, option) pairs: tf-idf of the option's title and channel, its
  position and the slate size, whether it lacks metadata, and its tf-idf similarity to the context and to the
  current video; the row's prediction is the option with the highest score (a softmax over them is its
  distribution);
- ``gradient_boosting``: histogram gradient boosting on (row, option) pairs of option features: position,
  engagement counts, length, missing metadata (and whether the option alone lacks it), similarity to the
  context and the current video, the same channel as the current video, a title already watched, and how often
  the title was clicked when shown in the training rows (leave-one-out on those rows).

The slate and the viewer are read back from the prompt (the default prompt sections; :mod:`grail_rl.data.rendered`),
falling back to the row's slate columns and the whole prompt as context. Fitting data: the recipe's training
rows when the evaluated rows are its own eval split; otherwise (a ``--data`` file, which is not the data the
recipe trains on) the baselines are **cross-fitted**: five folds over the evaluated rows, grouped by viewer, each
fold predicted by a model fitted on the other four. Every report says which.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grail_rl.errors import GrailError
from grail_rl.grail.texts import prompt_context

RULES = ("random", "most_frequent_position", "always_first", "always_last", "metadata_leak")
LEARNED = ("knn_tfidf", "logreg_tfidf", "gradient_boosting")
NAMES = RULES + LEARNED
FOLDS = 5
KNN_K = 50


@dataclass
class RowView:
    """What a baseline may know of a row: the viewer's context, the current video, the options, the labels."""

    context: str
    current: str
    current_channel: str
    options: list[dict[str, Any]]
    history: set[str]
    gold_index: int
    n_options: int
    group: str  # the viewer (participant id, else the profile text): cross-fitting never splits one

    def option_text(self, j: int) -> str:
        item = self.options[j]
        return f"{item.get('title') or ''} {item.get('channel_title') or ''}".strip()


def canonical(title: Any) -> str:
    return re.sub(r"[^0-9a-z]+", "", str(title or "").lower())


def _has_metadata(item: dict[str, Any]) -> bool:
    return bool(item.get("channel_title")) or item.get("duration") is not None


def row_view(row: dict[str, Any]) -> RowView:
    """Read the viewer and the slate back from a built row (its prompt; else its slate columns)."""
    from grail_rl.data.rendered import rendered_to_record
    from grail_rl.data.schema import RowDropped

    prompt = row["prompt"]
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    n = int(row["n_options"])
    try:
        record = rendered_to_record({"messages": messages})
        options = list(record["slate_items"])
        history = [entry.get("title") for entry in record.get("watched_detailed") or []]
        channel = str(record.get("current_video_channel") or "")
        current = f"{record.get('current_video_title') or ''} {channel}".strip()
        profile = "|".join(str(record.get(k) or "") for k in ("viewer_text", "viewpoint_text", "highlights_text"))
        context = " ".join(
            str(part) for part in (record.get("viewer_text"), record.get("viewpoint_text"),
                                   record.get("highlights_text"), current, *history) if part  # fmt: skip
        )
    except RowDropped:
        titles, channels = row.get("slate_titles") or [], row.get("slate_channels") or []
        options = [{"title": t, "channel_title": c} for t, c in zip(titles, channels or [None] * len(titles), strict=False)]
        history, current, channel, context = [], "", "", prompt_context(prompt)
        profile = context.split("\n", 1)[0]
    if len(options) != n:  # a slate that cannot be read back: the options stay anonymous, positions still count
        options = [{"title": f"option {j + 1}"} for j in range(n)]
    group = row.get("participant_id") or profile
    return RowView(context, current, channel.lower(), options, {canonical(t) for t in history},
                   int(row["gold_index"]), n, str(group))  # fmt: skip


# --- predictors ---------------------------------------------------------------------------------------


@dataclass
class Picks:
    """A baseline's answer per row (1-based) and, where it has one, its distribution over the options."""

    index: list[int] = field(default_factory=list)
    probabilities: list[list[float] | None] = field(default_factory=list)


def _most_frequent(train: Sequence[RowView]) -> int:
    return Counter(r.gold_index for r in train).most_common(1)[0][0] if train else 1


def _argmax(scores: Sequence[float]) -> int:
    return 1 + max(range(len(scores)), key=scores.__getitem__)


def _softmax(scores: Sequence[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _normalised(scores: Sequence[float], smoothing: float = 1e-3) -> list[float]:
    total = sum(scores) + smoothing * len(scores)
    return [(s + smoothing) / total for s in scores]


def predict_rule(name: str, train: Sequence[RowView], rows: Sequence[RowView], seed: int, position: int | None = None) -> Picks:
    """A rule's answers; ``position`` (the most frequent gold position) defaults to the one of ``train``."""
    picks = Picks()
    position = position if position is not None else _most_frequent(train)
    rng = random.Random(seed)
    for row in rows:
        n = row.n_options
        if name == "random":
            index, probabilities = rng.randint(1, n), [1 / n] * n
        else:
            index, probabilities = _rule_index(name, row, position), None
        picks.index.append(index)
        picks.probabilities.append(probabilities)
    return picks


def _rule_index(name: str, row: RowView, position: int) -> int:
    n = row.n_options
    if name == "always_first":
        return 1
    if name == "always_last":
        return n
    if name == "metadata_leak":
        bare = [j for j, item in enumerate(row.options) if not _has_metadata(item)]
        if len(bare) == 1 and n > 1:
            return bare[0] + 1
        return min(position, n)
    return position  # most_frequent_position: as the report's baseline counts it, wrong where the slate is shorter


class _Text:
    """One tf-idf space for contexts and options, fitted on the training rows."""

    def __init__(self, train: Sequence[RowView]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [r.context for r in train] + [r.option_text(j) for r in train for j in range(r.n_options)]
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=200_000)
        self.vectorizer.fit(texts or ["empty"])

    def transform(self, texts: Sequence[str]) -> Any:
        return self.vectorizer.transform(list(texts))


def _similarities(text: _Text, rows: Sequence[RowView]) -> tuple[list[float], list[float]]:
    """Per (row, option) pair in order: cosine to the row's context, and to its current video."""
    import numpy as np

    contexts = text.transform([r.context for r in rows])
    currents = text.transform([r.current for r in rows])
    options = text.transform([r.option_text(j) for r in rows for j in range(r.n_options)])
    owner = np.repeat(np.arange(len(rows)), [r.n_options for r in rows])
    to_context = np.asarray(options.multiply(contexts[owner]).sum(axis=1)).ravel()
    to_current = np.asarray(options.multiply(currents[owner]).sum(axis=1)).ravel()
    return to_context.tolist(), to_current.tolist()


def predict_knn(train: Sequence[RowView], rows: Sequence[RowView]) -> Picks:
    import numpy as np

    text = _Text(train)
    fitted = text.transform([r.context for r in train])
    chosen = [canonical(r.options[r.gold_index - 1].get("title")) for r in train]
    position = _most_frequent(train)
    picks = Picks()
    for start in range(0, len(rows), 512):  # bounded memory: a block of rows against all training rows
        block = rows[start : start + 512]
        sims = (text.transform([r.context for r in block]) @ fitted.T).toarray()
        for row, row_sims in zip(block, sims, strict=True):
            top = np.argsort(-row_sims)[:KNN_K]
            votes: Counter[str] = Counter()
            for j in top:
                votes[chosen[j]] += float(row_sims[j])
            scores = [votes.get(canonical(item.get("title")), 0.0) for item in row.options]
            if not any(scores):  # no neighbour clicked any of these videos: the position prior decides
                scores = [1.0 if j + 1 == min(position, row.n_options) else 0.0 for j in range(row.n_options)]
            picks.index.append(_argmax(scores))
            picks.probabilities.append(_normalised(scores))
    return picks


def _pair_features(rows: Sequence[RowView], text: _Text, clicks: dict[str, tuple[int, int]] | None, own: bool) -> Any:
    """Dense option features of every (row, option) pair, in order. ``clicks``: title -> (clicked, shown) in the
    training rows; ``own``: the rows are those training rows (their own click is left out of the rate)."""
    import numpy as np

    to_context, to_current = _similarities(text, rows)
    out, k = [], 0
    for row in rows:
        bare = [not _has_metadata(item) for item in row.options]
        for j, item in enumerate(row.options):
            title = canonical(item.get("title"))
            clicked, shown = (clicks or {}).get(title, (0, 0))
            if own:
                clicked, shown = clicked - (row.gold_index == j + 1), shown - 1
            out.append([
                j + 1, row.n_options, float(j + 1 == row.n_options), float(j == 0),
                math.log1p(item.get("view_count") or 0), math.log1p(item.get("like_count") or 0),
                math.log1p(item.get("comment_count") or 0),
                float(item["duration"]) if item.get("duration") is not None else np.nan,
                float(bare[j]), float(bare[j] and sum(bare) == 1),
                to_context[k], to_current[k],
                float(bool(row.current_channel) and str(item.get("channel_title") or "").lower() == row.current_channel),
                float(title in row.history),
                (clicked + 1) / (shown + 4) if shown >= 0 else 0.25,
            ])  # fmt: skip
            k += 1
    return np.asarray(out, dtype=float)


def _click_rates(train: Sequence[RowView]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = {}
    for row in train:
        for j, item in enumerate(row.options):
            entry = counts.setdefault(canonical(item.get("title")), [0, 0])
            entry[0] += row.gold_index == j + 1
            entry[1] += 1
    return {title: (clicked, shown) for title, (clicked, shown) in counts.items()}


def _labels(rows: Sequence[RowView]) -> list[int]:
    return [int(row.gold_index == j + 1) for row in rows for j in range(row.n_options)]


def _per_row(rows: Sequence[RowView], scores: Sequence[float], to_probabilities: Any) -> Picks:
    picks, k = Picks(), 0
    for row in rows:
        own = list(scores[k : k + row.n_options])
        k += row.n_options
        picks.index.append(_argmax(own))
        picks.probabilities.append(to_probabilities(own))
    return picks


def predict_logreg(train: Sequence[RowView], rows: Sequence[RowView], seed: int) -> Picks:
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    text = _Text(train)

    def features(subset: Sequence[RowView]) -> Any:
        options = text.transform([r.option_text(j) for r in subset for j in range(r.n_options)])
        to_context, to_current = _similarities(text, subset)
        dense = []
        for row in subset:
            for j in range(row.n_options):
                slot = [0.0] * 12  # position 1..5 (5+), last, slate size 2..5 (5+), missing metadata, alone missing
                slot[min(j, 4)] = 1.0
                slot[5] = float(j + 1 == row.n_options)
                slot[6 + min(max(row.n_options - 2, 0), 3)] = 1.0
                bare = [not _has_metadata(o) for o in row.options]
                slot[10], slot[11] = float(bare[j]), float(bare[j] and sum(bare) == 1)
                dense.append(slot)
        extra = np.column_stack([np.asarray(dense), to_context, to_current])
        return sparse.hstack([options, sparse.csr_matrix(extra)]).tocsr()

    model = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    model.fit(features(train), _labels(train))
    return _per_row(rows, model.decision_function(features(rows)).tolist(), _softmax)


def predict_boosting(train: Sequence[RowView], rows: Sequence[RowView], seed: int) -> Picks:
    from sklearn.ensemble import HistGradientBoostingClassifier

    text = _Text(train)
    clicks = _click_rates(train)
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=seed)
    model.fit(_pair_features(train, text, clicks, own=True), _labels(train))
    scores = model.predict_proba(_pair_features(rows, text, clicks, own=False))[:, 1].tolist()
    return _per_row(rows, scores, _normalised)


def predict(name: str, train: Sequence[RowView], rows: Sequence[RowView], seed: int = 0) -> Picks:
    """The answers of baseline ``name`` on ``rows``, fitted on ``train``."""
    if name in RULES:
        return predict_rule(name, train, rows, seed)
    require_sklearn(name)
    if not train:
        raise GrailError(f"--baseline {name}: no training rows to fit it on")
    if name != "knn_tfidf" and all(row.n_options < 2 for row in train):
        raise GrailError(f"--baseline {name}: every fitting row has a single option: there is no choice to learn")
    if name == "knn_tfidf":
        return predict_knn(train, rows)
    if name == "logreg_tfidf":
        return predict_logreg(train, rows, seed)
    if name == "gradient_boosting":
        return predict_boosting(train, rows, seed)
    raise GrailError(f"--baseline {name}: unknown; choose from {', '.join(NAMES)} or all")


UNFITTED = ("random", "always_first", "always_last")  # rules that learn nothing: never fitted or cross-fitted


def cross_fitted(name: str, rows: Sequence[RowView], seed: int = 0, folds: int = FOLDS) -> Picks:
    """Each fold of ``rows`` (grouped by viewer) predicted by ``name`` fitted on the other folds; a rule that
    learns nothing is applied to every row as it is."""
    if name in UNFITTED:
        return predict_rule(name, [], rows, seed)
    groups = sorted({row.group for row in rows})
    if len(groups) < 2:
        raise GrailError(f"--baseline {name}: cross-fitting needs rows of at least two viewers")
    shuffled = random.Random(seed).sample(groups, len(groups))
    fold_of = {group: i % min(folds, len(groups)) for i, group in enumerate(shuffled)}
    picks = Picks(index=[0] * len(rows), probabilities=[None] * len(rows))
    for fold in range(min(folds, len(groups))):
        held = [i for i, row in enumerate(rows) if fold_of[row.group] == fold]
        fitted = predict(name, [row for row in rows if fold_of[row.group] != fold], [rows[i] for i in held], seed)
        for i, index, probabilities in zip(held, fitted.index, fitted.probabilities, strict=True):
            picks.index[i], picks.probabilities[i] = index, probabilities
    return picks


def require_sklearn(name: str) -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise GrailError(
            f"--baseline {name} needs scikit-learn: pip install 'grail-rl[baselines]'"
        ) from None


def metadata_leak_entry(rows: Sequence[dict[str, Any]], position: int) -> dict[str, Any] | None:
    """The metadata-leak rule as a trivial baseline of a report: its accuracy on ``rows`` (built rows), with
    ``position`` as its fallback. None when no row has a single option without metadata (the rule is then the
    most-frequent-position rule, already reported)."""
    from grail_rl.evaluation.metrics import rate

    views = [row_view(row) for row in rows]
    picks = predict_rule("metadata_leak", [], views, 0, position)
    leaky = sum(1 for view in views if sum(not _has_metadata(item) for item in view.options) == 1 and view.n_options > 1)
    if not leaky:
        return None
    correct = sum(1 for view, pick in zip(views, picks.index, strict=True) if pick == view.gold_index)
    return {**rate(correct, len(views)),
            "note": f"the option that alone lacks the channel and length the others show ({leaky:,} rows; the gun "
                    f"data's leak), else option {position}"}  # fmt: skip
