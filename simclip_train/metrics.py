"""Classification metrics the papers report: macro-F1, accuracy, balanced accuracy, AUROC,
weighted-F1, and the official MAMI sub-task B score (`mami_subtask_b_f1`).

Plain numpy, so evaluation needs no scikit-learn; the definitions match scikit-learn's
(`f1_score(average='macro'|'weighted')`, `balanced_accuracy_score`, `roc_auc_score` with
one-vs-rest macro averaging for several classes).
"""

import re
from collections import Counter

import numpy as np

from simclip import DEFAULT_THRESHOLD


def confusion(y_true, y_pred, n_classes):
    """(C, C) counts, rows = true class, columns = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def per_class_f1(m):
    """F1 of each class from a confusion matrix (0 where a class is never true nor predicted)."""
    tp = np.diag(m).astype(float)
    denom = m.sum(0) + m.sum(1)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true, y_pred, n_classes):
    """Unweighted mean F1 over the classes that occur in the truth or the predictions."""
    m = confusion(y_true, y_pred, n_classes)
    present = (m.sum(0) + m.sum(1)) > 0
    return float(per_class_f1(m)[present].mean()) if present.any() else 0.0


def weighted_f1(y_true, y_pred, n_classes):
    """F1 per class weighted by the class's support in the truth."""
    m = confusion(y_true, y_pred, n_classes)
    support = m.sum(1)
    return float((per_class_f1(m) * support).sum() / max(support.sum(), 1))


def accuracy(y_true, y_pred):
    """Fraction of exact matches."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def balanced_accuracy(y_true, y_pred, n_classes):
    """Mean recall over the classes present in the truth."""
    m = confusion(y_true, y_pred, n_classes)
    support = m.sum(1)
    present = support > 0
    return float((np.diag(m)[present] / support[present]).mean()) if present.any() else 0.0


def binary_auroc(y_true, scores):
    """Area under the ROC curve (Mann-Whitney U with tie correction); NaN with one class only."""
    y_true = np.asarray(y_true, bool)
    scores = np.asarray(scores, float)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def multiclass_auroc(y_true, probs):
    """Macro one-vs-rest AUROC over the classes present in the truth (binary: positive class)."""
    probs = np.asarray(probs, float)
    y_true = np.asarray(y_true, int)
    if probs.shape[1] == 2:
        return binary_auroc(y_true == 1, probs[:, 1])
    vals = [binary_auroc(y_true == c, probs[:, c]) for c in range(probs.shape[1])
            if 0 < (y_true == c).sum() < len(y_true)]
    return float(np.mean(vals)) if vals else float("nan")


def multiclass_metrics(y_true, probs):
    """Metrics of a multiclass task from (N,) true indices and (N, C) probabilities (argmax)."""
    probs = np.asarray(probs, float)
    n_classes = probs.shape[1]
    y_pred = probs.argmax(1)
    return {"n": len(y_true),
            "macro_f1": macro_f1(y_true, y_pred, n_classes),
            "accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred, n_classes),
            "weighted_f1": weighted_f1(y_true, y_pred, n_classes),
            "auroc": multiclass_auroc(y_true, probs)}


def mami_subtask_b_f1(y_true, y_pred):
    """The official MAMI sub-task B score (SemEval-2022 Task 5).

    For each type (shaming, stereotype, objectification, violence: the columns), the binary
    macro-F1 of that column (the mean of the positive-class and the negative-class F1, over the
    classes that occur in its truth or predictions); then the mean of the columns weighted by
    their gold positive counts.

    Args:
        y_true: (n, L) array of 0/1 gold labels (L = 4 for MAMI).
        y_pred: (n, L) array of 0/1 predictions.

    Returns:
        The score in [0, 1]; NaN when no column has a gold positive (the weights are all 0).
    """
    y_true = np.asarray(y_true, int)
    y_pred = np.asarray(y_pred, int)
    if y_true.ndim != 2 or y_true.shape != y_pred.shape:
        raise ValueError(f"expected two (n, L) arrays of the same shape, got {y_true.shape} "
                         f"and {y_pred.shape}")
    positives = y_true.sum(0).astype(float)
    if positives.sum() == 0:
        return float("nan")
    per_type = np.array([macro_f1(y_true[:, k], y_pred[:, k], 2) for k in range(y_true.shape[1])])
    return float((per_type * positives).sum() / positives.sum())


def multilabel_metrics(y_true, probs, threshold=0.5):
    """Metrics of a multilabel task from (N, L) 0/1 truths and (N, L) probabilities.

    Decisions are `prob >= threshold` per label. macro_f1 is the mean over labels of each
    label's positive-class F1 (scikit-learn's f1_score(average='macro') on multilabel input);
    `mami_b_f1` is the official MAMI sub-task B score (`mami_subtask_b_f1`: each label's binary
    macro-F1, weighted by its gold positives). It replaces the positive-class weighted-F1
    reported before, which read about 10 points lower than the official score.
    """
    y_true = np.asarray(y_true, int)
    y_pred = (np.asarray(probs, float) >= threshold).astype(int)
    tp = (y_true & y_pred).sum(0).astype(float)
    denom = y_true.sum(0) + y_pred.sum(0)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    aucs = [binary_auroc(y_true[:, k], np.asarray(probs)[:, k]) for k in range(y_true.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    bal = [balanced_accuracy(y_true[:, k], y_pred[:, k], 2) for k in range(y_true.shape[1])]
    return {"n": len(y_true),
            "macro_f1": float(f1.mean()),
            "mami_b_f1": mami_subtask_b_f1(y_true, y_pred),
            "accuracy": float((y_true == y_pred).all(1).mean()) if len(y_true) else 0.0,
            "balanced_accuracy": float(np.mean(bal)),
            "auroc": float(np.mean(aucs)) if aucs else float("nan")}


def binary_metrics(y_true, scores, threshold):
    """Metrics of a yes/no decision `score >= threshold` (a warning category)."""
    y_true = np.asarray(y_true, int)
    y_pred = (np.asarray(scores, float) >= threshold).astype(int)
    return {"n": len(y_true), "threshold": float(threshold),
            "macro_f1": macro_f1(y_true, y_pred, 2),
            "accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred, 2),
            "auroc": binary_auroc(y_true, scores)}


def tune_threshold(y_true, scores):
    """The threshold in [0, 1] maximising binary macro-F1 (ties: the one closest to
    DEFAULT_THRESHOLD, 0.5).

    Candidates are midpoints between consecutive distinct scores, plus DEFAULT_THRESHOLD.
    """
    scores = np.asarray(scores, float)
    y_true = np.asarray(y_true, int)
    s = np.unique(scores)
    midpoints = (s[:-1] + s[1:]) / 2.0 if len(s) > 1 else []
    candidates = np.unique(np.concatenate([[DEFAULT_THRESHOLD], midpoints]))
    best, best_key = DEFAULT_THRESHOLD, None
    for t in candidates:
        key = (macro_f1(y_true, (scores >= t).astype(int), 2), -abs(t - DEFAULT_THRESHOLD))
        if best_key is None or key > best_key:
            best, best_key = float(t), key
    return min(max(best, 0.0), 1.0)


# ---------------------------------------------------------------- OCR word metrics (docs/ocr.md)

_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text):
    """Lowercased alphanumeric tokens of a text, in order."""
    return _TOKEN.findall(text.lower())


def _bag_overlap(of, within):
    """Share of the tokens of `of` found in `within` (bag of words); None when `of` has none."""
    bag = Counter(tokenize(of))
    total = sum(bag.values())
    if total == 0:
        return None
    other = Counter(tokenize(within))
    return sum(min(n, other[w]) for w, n in bag.items()) / total


def word_recall(reference, hypothesis):
    """Bag-of-words recall of reference tokens in the hypothesis; None when the reference has none."""
    return _bag_overlap(reference, hypothesis)


def word_precision(reference, hypothesis):
    """Bag-of-words precision: share of OCR tokens found in the reference; None when OCR gave none."""
    return _bag_overlap(hypothesis, reference)
