"""The papers' metrics: the official MAMI sub-task B score, Memotion's Task A/B/C, binary and
3-class HarMeme from one head, epoch selection on primary tasks, and evaluate's refusals."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from simclip import MULTICLASS, MULTILABEL, TaskSpec
from simclip_train.datasets import HARM_LEVELS, HARM_TARGETS, MEMOTION_LEVELS, SENTIMENT, Example, get_dataset
from simclip_train.evaluate import evaluate_head, paper_metrics
from simclip_train.metrics import mami_subtask_b_f1, multilabel_metrics
from simclip_train.train import get_selection_tasks, selection_score

# Six memes, the four MAMI types as columns (shaming, stereotype, objectification, violence).
MAMI_TRUE = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0],
                      [1, 0, 0, 0]])
MAMI_PRED = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0],
                      [1, 0, 0, 1]])


def test_mami_subtask_b_f1_is_each_types_binary_macro_f1_weighted_by_gold_positives():
    # shaming:  TP 2 (rows 1, 6), FN 1 (row 2), FP 1 (row 5), TN 2.
    #           F1+ = 2*2 / (2*2 + 1 + 1) = 2/3;  F1- = 2*2 / (2*2 + 1 + 1) = 2/3;  macro 2/3; 3 gold
    # stereotype: perfect: macro 1;                                                         2 gold
    # objectification: TP 1, FP 1 (row 3), FN 0, TN 4.
    #           F1+ = 2 / (2 + 1) = 2/3;  F1- = 8 / (8 + 1) = 8/9;  macro (2/3 + 8/9) / 2 = 7/9; 1 gold
    # violence: no gold positive (one false alarm): macro (0 + 10/11) / 2, weight 0.
    # official = (3 * 2/3 + 2 * 1 + 1 * 7/9) / (3 + 2 + 1) = (43/9) / 6 = 43/54
    assert mami_subtask_b_f1(MAMI_TRUE, MAMI_PRED) == pytest.approx(43 / 54)
    # our old number, positive-class F1 only: (3 * 2/3 + 2 * 1 + 1 * 2/3) / 6 = 7/9, lower
    assert mami_subtask_b_f1(MAMI_TRUE, MAMI_PRED) > 7 / 9 + 0.01


def test_mami_subtask_b_f1_edge_cases():
    assert mami_subtask_b_f1(MAMI_TRUE, MAMI_TRUE) == 1.0
    assert np.isnan(mami_subtask_b_f1(np.zeros((3, 4)), np.ones((3, 4))))  # no gold positive
    with pytest.raises(ValueError, match="same shape"):
        mami_subtask_b_f1(MAMI_TRUE, MAMI_PRED[:, :3])


def test_multilabel_metrics_report_the_official_sub_task_b_score_instead_of_weighted_f1():
    probs = np.where(MAMI_PRED == 1, 0.8, 0.2)
    m = multilabel_metrics(MAMI_TRUE, probs)
    assert m["mami_b_f1"] == pytest.approx(43 / 54)
    assert "weighted_f1" not in m
    assert get_dataset("mami:b").primary_metric == {"misogyny_type": "mami_b_f1"}


class FixedHead:
    """A head stub: fixed probabilities per example (the image embedding holds its row)."""

    def __init__(self, tasks, probs):
        self.config = SimpleNamespace(tasks=tasks)
        self.probs = {k: torch.tensor(v, dtype=torch.float32) for k, v in probs.items()}

    def eval(self):
        return self

    def predict_proba(self, image, text):
        rows = image[:, 0].long()
        return {k: v[rows] for k, v in self.probs.items()}


def cache_of(dataset, n):
    return {"dataset": dataset, "image": torch.arange(n).float().unsqueeze(1),
            "text": torch.zeros(n, 1)}


def examples(labels):
    return [Example(f"m{i}", Path(f"m{i}.png"), "", lab) for i, lab in enumerate(labels)]


HARMFULNESS = TaskSpec("harmfulness", MULTICLASS, HARM_LEVELS)
HARMFUL = TaskSpec("harmful", MULTICLASS, ["not harmful", "harmful"])
# A 3-class head on four memes of levels 0, 1, 2, 0.
THREE_PROBS = [[0.6, 0.3, 0.1], [0.4, 0.35, 0.25], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]]
WARN = {"category": "harmful", "task": "harmfulness", "labels": HARM_LEVELS[1:], "threshold": 0.5}


def test_a_three_class_head_is_reported_in_three_classes_and_in_binary():
    head = FixedHead([HARMFULNESS], {"harmfulness": THREE_PROBS})
    out = evaluate_head(head, {"warnings": [WARN]},
                        examples([{"harmfulness": v} for v in (0, 1, 2, 0)]),
                        cache_of("harmeme-c:3class", 4))
    # 3 classes: argmax 0, 0, 2, 1 against 0, 1, 2, 0:
    #   F1 not = 2*1/(2+1+1) = 1/2, somewhat = 0, very = 1  -> macro 1/2
    assert out["tasks"]["harmfulness"]["macro_f1"] == pytest.approx(0.5)
    # binary: P(harmful) = P(somewhat) + P(very) = .4, .6, .9, .8 -> 0, 1, 1, 1 against 0, 1, 1, 0
    #   F1 not = 2/(2+1) = 2/3, harmful = 4/(4+1) = 4/5 -> macro 11/15
    #   (argmax first, then merging, would say 0, 0, 1, 1 -> macro 1/2)
    assert out["tasks"]["harmful"]["macro_f1"] == pytest.approx(11 / 15)
    assert out["warnings"]["harmful/harmfulness"]["macro_f1"] == pytest.approx(11 / 15)
    binary = evaluate_head(head, {"warnings": [WARN]},
                           examples([{"harmful": v} for v in (0, 1, 1, 0)]),
                           cache_of("harmeme-c", 4))
    assert set(binary["tasks"]) == {"harmful"}
    assert binary["tasks"]["harmful"]["macro_f1"] == pytest.approx(11 / 15)
    assert paper_metrics(get_dataset("harmeme-c"), binary) == {
        "harmful": {"metric": "macro_f1", "value": pytest.approx(11 / 15)}}


def test_evaluate_refuses_a_head_that_shares_no_task_with_the_setting():
    head = FixedHead([HARMFUL], {"harmful": [[0.5, 0.5]] * 2})
    with pytest.raises(ValueError, match="gives no task of dataset setting 'harmeme-c:3class'"
                                         ".*needs harmfulness.*has harmful"):
        evaluate_head(head, {"warnings": []}, examples([{"harmfulness": 0}] * 2),
                      cache_of("harmeme-c:3class", 2))


def test_evaluate_refuses_a_head_that_lacks_some_tasks_unless_told_to_report_the_shared_ones():
    head = FixedHead([HARMFUL], {"harmful": [[0.9, 0.1], [0.2, 0.8]]})
    rows = examples([{"harmful": 0, "target": None}, {"harmful": 1, "target": [1, 0, 0, 0]}])
    with pytest.raises(ValueError, match=r"lacks task\(s\) of dataset setting "
                                         r"'harmeme-c:binary\+target': target \(not in the head\)"
                                         r".*--only-shared-tasks"):
        evaluate_head(head, {"warnings": []}, rows, cache_of("harmeme-c:binary+target", 2))
    out = evaluate_head(head, {"warnings": []}, rows, cache_of("harmeme-c:binary+target", 2),
                        only_shared=True)
    assert set(out["tasks"]) == {"harmful"} and out["missing_tasks"] == ["target"]
    # a head whose `target` is the old 4-way softmax does not give the multilabel target
    old = FixedHead([HARMFUL, TaskSpec("target", MULTICLASS, HARM_TARGETS)],
                    {"harmful": [[0.9, 0.1]] * 2, "target": [[0.25] * 4] * 2})
    with pytest.raises(ValueError, match="the head's 'target' is multiclass"):
        evaluate_head(old, {"warnings": []}, rows, cache_of("harmeme-c:binary+target", 2))


def one_hot(levels, n_classes, p=0.97):
    rest = (1 - p) / (n_classes - 1)
    return [[p if c == v else rest for c in range(n_classes)] for v in levels]


def test_memotion_task_a_b_c_are_the_official_means_and_task_b_merges_the_levels():
    tasks = [TaskSpec(f"memotion_{k}", MULTICLASS, v) for k, v in MEMOTION_LEVELS.items()]
    tasks.append(TaskSpec("memotion_sentiment", MULTICLASS, SENTIMENT))
    truth = {"memotion_humour": [0, 1, 2, 3], "memotion_sarcasm": [0, 1, 0, 3],
             "memotion_offensive": [1, 0, 0, 2], "memotion_motivational": [0, 1, 1, 0],
             "memotion_sentiment": [2, 1, 0, 2]}
    probs = {k: one_hot(v, len(t.labels)) for (k, v), t in zip(truth.items(), tasks)}
    # humour: levels 0, 2, 0, 3 by argmax; the third meme has P(not funny) = .4 < .6
    probs["memotion_humour"] = [[0.97, 0.01, 0.01, 0.01], [0.05, 0.05, 0.85, 0.05],
                                [0.4, 0.2, 0.2, 0.2], [0.01, 0.01, 0.01, 0.97]]
    head = FixedHead(tasks, probs)
    out = evaluate_head(head, {"warnings": []},
                        examples([{k: v[i] for k, v in truth.items()} for i in range(4)]),
                        cache_of("memotion", 4))
    # humour 4 levels: pred 0, 2, 0, 3 vs 0, 1, 2, 3: F1 = 2/3, 0, 0, 1 -> macro 5/12
    assert out["tasks"]["memotion_humour"]["macro_f1"] == pytest.approx(5 / 12)
    # humour yes/no from the merged levels: 0, 1, 1, 1 vs 0, 1, 1, 1 -> 1 (argmax levels then
    # yes/no would say 0, 1, 0, 1 -> 11/15)
    assert out["tasks"]["memotion_humour_binary"]["macro_f1"] == pytest.approx(1.0)
    agg = out["aggregates"]
    assert agg["memotion_task_a"]["macro_f1"] == pytest.approx(1.0)
    assert agg["memotion_task_b"]["macro_f1"] == pytest.approx(1.0)
    # Task C: (5/12 + 1 + 1 + 1) / 4 = 41/48
    assert agg["memotion_task_c"]["macro_f1"] == pytest.approx(41 / 48)
    reported = paper_metrics(get_dataset("memotion"), out)
    assert reported["memotion_task_c"] == {"metric": "mean macro_f1",
                                           "value": pytest.approx(41 / 48)}


def test_epochs_are_selected_on_the_primary_tasks_only():
    specs = [get_dataset("harmeme-c:binary+target"), get_dataset("mami:b")]
    assert get_selection_tasks(specs) == ["harmful", "misogyny_type"]
    metrics = {"harmful": {"macro_f1": 0.8}, "target": {"macro_f1": 0.1},
               "misogyny_type": {"macro_f1": 0.6}}
    assert selection_score(metrics, get_selection_tasks(specs)) == pytest.approx(0.7)
    assert selection_score({"target": {"macro_f1": 0.1}}, ["harmful"]) == 0.0
    assert get_dataset("harmeme-p:3class+target").primary_tasks == ["harmfulness"]
    assert TaskSpec("target", MULTILABEL, HARM_TARGETS) in get_dataset(
        "harmeme-p:binary+target").tasks
