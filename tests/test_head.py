"""The SimCLIP head: shared siamese projection, four-block fusion, per-task heads, masked loss."""

import pytest
import torch

from simclip import HeadConfig, SimCLIPHead, TaskSpec, fuse, simclip_loss
from simclip.head import SiameseProjector, TaskHead

TASKS = [TaskSpec("harmful", "multiclass", ["not harmful", "somewhat", "very"]),
         TaskSpec("mami_b", "multilabel", ["shaming", "stereotype", "objectification", "violence"])]


@pytest.fixture
def head():
    torch.manual_seed(0)
    return SimCLIPHead(HeadConfig(embed_dim=32, tasks=TASKS)).eval()


def test_one_projector_is_shared_by_both_modalities(head):
    projectors = [m for m in head.modules() if isinstance(m, SiameseProjector)]
    assert len(projectors) == 1
    img, txt = torch.randn(2, 32), torch.randn(2, 32)
    before_img, before_txt = head.projector(img), head.projector(txt)
    with torch.no_grad():
        head.projector.proj.weight.add_(0.5)
    assert not torch.allclose(head.projector(img), before_img)
    assert not torch.allclose(head.projector(txt), before_txt)


def test_projection_is_l2_normalized_128_dims(head):
    p = head.projector(torch.randn(5, 32))
    assert p.shape == (5, 128)
    torch.testing.assert_close(p.norm(dim=-1), torch.ones(5))


def test_fusion_is_exactly_the_four_blocks():
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    f = fuse(a, b)
    assert f.shape == (3, 16)
    torch.testing.assert_close(f[:, :4], a)
    torch.testing.assert_close(f[:, 4:8], b)
    torch.testing.assert_close(f[:, 8:12], (a - b).abs())
    torch.testing.assert_close(f[:, 12:], a * b)


def test_each_head_has_its_tasks_output_shape(head):
    out = head(torch.randn(7, 32), torch.randn(7, 32))
    assert out["harmful"].shape == (7, 3) and out["mami_b"].shape == (7, 4)


def test_task_head_layers_follow_the_paper():
    net = TaskHead(512, 512, depth=2, dropout=0.1, n_classes=2).net
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Dropout", "LayerNorm", "Linear", "GELU", "Dropout",
                     "LayerNorm", "Linear", "GELU", "Dropout",
                     "LayerNorm", "Linear", "GELU", "Linear"]


def test_head_sizes_are_configurable():
    head = SimCLIPHead(HeadConfig(embed_dim=16, proj_dim=8, hidden_dim=24, depth=1, dropout=0.0,
                                  tasks=TASKS[:1]))
    assert head.projector.proj.out_features == 8
    assert head.heads["harmful"].net[2].in_features == 32  # 4 x proj_dim
    assert head(torch.randn(2, 16), torch.randn(2, 16))["harmful"].shape == (2, 3)


def test_loss_ignores_samples_with_missing_labels(head):
    head.train(False)
    logits = head(torch.randn(4, 32), torch.randn(4, 32))
    nan = float("nan")
    full = {"harmful": torch.tensor([0, 2, -1, -1]),
            "mami_b": torch.tensor([[1., 0, 0, 1], [nan] * 4, [0., 1, 1, 0], [nan] * 4])}
    loss = simclip_loss(logits, full, TASKS)
    # the same loss computed from the labelled rows alone
    ce = torch.nn.functional.cross_entropy(logits["harmful"][:2], full["harmful"][:2])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits["mami_b"][[0, 2]], full["mami_b"][[0, 2]])
    torch.testing.assert_close(loss, ce + bce)  # row 3, with no label at all, adds nothing


def test_loss_is_zero_with_a_gradient_when_no_label_is_present(head):
    logits = head(torch.randn(2, 32), torch.randn(2, 32))
    loss = simclip_loss(logits, {"harmful": torch.tensor([-1, -1])}, TASKS)
    assert loss.item() == 0.0
    loss.backward()  # does not raise


def test_task_specs_are_validated():
    with pytest.raises(ValueError, match="kind"):
        TaskSpec("x", "regression", ["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        TaskSpec("x", "multiclass", ["a", "a"])
    with pytest.raises(ValueError, match="at least one task"):
        HeadConfig(tasks=[])
