"""Anchors, RPN proposal layer and targets, RoI head sampling and post-processing, end-to-end training."""

import numpy as np
import pytest

import minidl
from minidl import models
from minidl.datasets.scenes import SceneConfig, SyntheticScenes
from minidl.models.detection._utils import match, sample_balanced
from minidl.models.detection.anchor_utils import PRESETS, AnchorGenerator
from minidl.models.detection.faster_rcnn import FasterRCNN, build_backbone, images_to_tensor
from minidl.models.detection.roi_heads import RoIHeads
from minidl.models.detection.rpn import RegionProposalNetwork
from minidl.metrics_detection import detection_map


def test_anchor_count_shapes_and_values():
    gen = AnchorGenerator(**PRESETS["seed"], stride=16)
    assert gen.num_anchors_per_location == 15
    anchors = gen.grid_anchors((3, 4))
    assert anchors.shape == (3 * 4 * 15, 4) and anchors.dtype == np.float32
    cell = gen.cell_anchors()
    # ratio-major: the first 5 are ratio 0.8 (wider than tall), sizes 32..252; area ~ size^2
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    np.testing.assert_allclose(np.sqrt(w * h), np.tile(PRESETS["seed"]["sizes"], 3), rtol=0.03)
    np.testing.assert_allclose((h / w)[:5], 0.8, rtol=0.03)
    # every cell's anchors are the cell anchors shifted by (x * stride, y * stride): order (H, W, A)
    np.testing.assert_array_equal(anchors.reshape(3, 4, 15, 4)[2, 1], cell + [16, 32, 16, 32])
    # torchvision's values for size 32, ratio 1: [-16, -16, 16, 16]
    np.testing.assert_array_equal(AnchorGenerator((32,), (1.0,), 8).cell_anchors(), [[-16, -16, 16, 16]])
    with pytest.raises(ValueError, match="aspect_ratios"):
        AnchorGenerator((32,), (0.0,))


def test_matcher_and_sampler():
    gt = np.array([[0.0, 0, 10, 10], [50, 50, 60, 60]])
    boxes = np.array([[0.0, 0, 10, 10], [0, 0, 10, 6], [0, 0, 10, 2], [50, 50, 58, 58], [100, 100, 110, 110]])
    matches, _ = match(gt, boxes, 0.7, 0.3, allow_low_quality_matches=False)
    np.testing.assert_array_equal(matches, [0, -2, -1, -2, -1])  # IoUs 1, 0.6, 0.2, 0.64, 0
    # low-quality matches: box 3 is gt 1's best anchor -> positive
    matches, _ = match(gt, boxes, 0.7, 0.3, allow_low_quality_matches=True)
    np.testing.assert_array_equal(matches, [0, -2, -1, 1, -1])
    labels = np.array([1] * 10 + [0] * 100 + [-1] * 5)
    pos, neg = sample_balanced(labels, 16, 0.25, np.random.default_rng(0))
    assert len(pos) == 4 and len(neg) == 12 and (labels[pos] == 1).all() and (labels[neg] == 0).all()
    pos, neg = sample_balanced(np.array([1, 0, 0, -1]), 256, 0.5, np.random.default_rng(0))
    assert len(pos) == 1 and len(neg) == 2


def test_proposal_layer_keeps_top_k_after_nms():
    rpn = RegionProposalNetwork(8, AnchorGenerator((16,), (1.0,), 8), pre_nms_top_n=(5, 3), post_nms_top_n=(4, 2),
                                nms_thresh=0.5)
    anchors = rpn.anchor_generator.grid_anchors((4, 4)) + 16  # 16 anchors inside a 64x64 image
    objectness = np.arange(16, dtype=np.float32)
    deltas = np.zeros((16, 4), np.float32)
    rpn.eval()  # test values: 3 before NMS, 2 after
    boxes, scores = rpn.filter_proposals(anchors, objectness, deltas, (64, 64))
    # the 3 best anchors are 15, 14, 13 (neighbours 8 px apart: IoU 1/3 < 0.5, so NMS keeps all), then 2 kept
    np.testing.assert_array_equal(scores, [15, 14])
    np.testing.assert_array_equal(boxes, np.clip(anchors[[15, 14]], 0, 64))
    rpn.train()  # training values: 5 before, 4 after; a strict NMS removes overlapping neighbours
    rpn.nms_thresh = 0.3
    boxes, scores = rpn.filter_proposals(anchors, objectness, deltas, (64, 64))
    # the 5 best are cells 15, 14, 13, 12 (bottom row) and 11 (above 15); 14 and 11 overlap 15 and 12
    # overlaps 13 with IoU 1/3 > 0.3
    np.testing.assert_array_equal(scores, [15, 13])


def test_rpn_targets_and_loss_values():
    rpn = RegionProposalNetwork(4, AnchorGenerator((16,), (1.0,), 8), batch_size_per_image=8)
    anchors = rpn.anchor_generator.grid_anchors((4, 4))
    gt = np.array([[8.0, 8, 24, 24]], np.float32)  # exactly the anchor of cell (2, 2): index 10
    labels, matched = rpn.assign_targets(anchors, gt)
    assert labels[10] == 1 and (matched[10] == gt[0]).all()
    assert (labels[labels != 1] <= 0).all()
    features = minidl.randn(1, 4, 4, 4)
    rpn.train()
    _, _, losses = rpn(features, (48, 48), [{"boxes": gt, "labels": np.array([1])}])
    # head initialised with zero biases and tiny weights: logits ~ 0 -> BCE ~ log 2
    assert losses["loss_objectness"].item() == pytest.approx(np.log(2), abs=0.02)
    assert losses["loss_rpn_box_reg"].item() >= 0


def test_roi_head_sampling_and_postprocess():
    heads = RoIHeads(4, 3, 1 / 8, output_size=2, representation_size=8, batch_size_per_image=8,
                     positive_fraction=0.25)
    gt = {"boxes": np.array([[0.0, 0, 16, 16]], np.float32), "labels": np.array([2])}
    proposals = [np.array([[0.0, 0, 16, 15], [30, 30, 40, 40], [0, 0, 4, 4], [20, 0, 30, 10]], np.float32)]
    _, labels, regression = heads.select_training_samples(proposals, [gt])
    # positives: the near-copy and the appended ground truth (IoU >= 0.5), at most 2 (25% of 8)
    assert (labels[0][labels[0] > 0] == 2).all() and (labels[0] > 0).sum() == 2
    assert (labels[0] == 0).sum() == 3  # all the background proposals
    np.testing.assert_allclose(regression[0][labels[0] == 0], 0)
    # post-processing: a confident class-1 box and one below the score threshold
    logits = np.array([[0.0, 8.0, 0.0], [5.0, 0.0, 0.0]], np.float32)
    out = heads.postprocess(logits, np.zeros((2, 12), np.float32), [np.array([[0.0, 0, 10, 10], [5, 5, 9, 9]])],
                            (32, 32))[0]
    assert out["labels"].tolist() == [1, 2, 2] or out["labels"][0] == 1
    assert out["scores"][0] == pytest.approx(np.exp(8) / (np.exp(8) + 2), rel=1e-5)
    assert (out["scores"] > 0.05).all()


def test_fasterrcnn_builders_and_errors():
    net = models.fasterrcnn(backbone="tiny", num_classes=3)
    assert net.backbone.stride == 8 and net.rpn.head.cls_logits.out_channels == 12
    with pytest.raises(ValueError, match="backbone"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="num_classes"):
        FasterRCNN(build_backbone("tiny"), 1)
    with pytest.raises(TypeError, match="images"):
        net(np.zeros((1, 3, 32, 32)))


def test_end_to_end_overfits_a_few_scenes():
    minidl.manual_seed(0)
    scenes = SyntheticScenes(2, seed=3, config=SceneConfig(128, 96, min_size=20, max_size=36, max_signs=2,
                                                             noise=2.0, occlusion=0.0))
    images = [scenes[i][0] for i in range(2)]
    targets = [scenes[i][1] for i in range(2)]
    model = FasterRCNN(build_backbone("tiny"), 7, box_batch_size_per_image=32, representation_size=64,
                       rpn_batch_size_per_image=64)
    x = images_to_tensor(images)
    train_targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
    opt = minidl.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate():
        model.eval()
        with minidl.no_grad():
            out = model(x)
        model.train()
        return detection_map([{**d, "labels": d["labels"] - 1} for d in out], targets)["map"]

    map_before = evaluate()
    losses = []
    for _ in range(30):
        loss_dict = model(x, train_targets)
        loss = sum(loss_dict.values(), minidl.tensor(0.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    map_after = evaluate()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert map_after > max(0.5, map_before + 0.3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_anchors_and_matcher_against_torchvision(preset):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    from torchvision.models.detection import _utils as tv_utils
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    ours = AnchorGenerator(**PRESETS[preset], stride=16)
    theirs = TvAnchorGenerator((PRESETS[preset]["sizes"],), (PRESETS[preset]["aspect_ratios"],))
    images = ImageList(torch.zeros(1, 3, 80, 128), [(80, 128)])
    expected = theirs(images, [torch.zeros(1, 8, 5, 8)])[0].numpy()  # stride 16 from the 80x128 image
    np.testing.assert_array_equal(ours.grid_anchors((5, 8)), expected)

    # the matcher, on anchors that every ground-truth box overlaps (torchvision would also give a box
    # with zero overlap everywhere its "best" anchors; minidl does not, on purpose)
    rng = np.random.default_rng(len(preset))
    xy = rng.random((6, 2)) * 80
    gt = np.concatenate([xy, xy + 20 + rng.random((6, 2)) * 40], axis=1).astype(np.float32)
    for high, low, low_quality in ((0.7, 0.3, True), (0.5, 0.5, False)):
        matcher = tv_utils.Matcher(high, low, allow_low_quality_matches=low_quality)
        want = matcher(tv.ops.box_iou(torch.from_numpy(gt), torch.from_numpy(expected))).numpy()
        got, _ = match(gt, expected, high, low, allow_low_quality_matches=low_quality)
        assert (want >= 0).sum() >= 6 and (want == -1).any()  # positives and background both occur
        np.testing.assert_array_equal(got, want)
