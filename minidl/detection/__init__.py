"""Traffic-sign detection, the application: the seed's filter pipeline, training and evaluation.

The model is in the zoo and the data are readers, as in torchvision; this package holds what uses
them:

- ``pipeline``: position, shape, background-gate, sign-classifier, NMS and top-k stages, each
  measured (boxes in, boxes out, seconds).
- ``transforms``: the joint (image, target) horizontal flip and ``collate_fn``, the detection
  batch for ``minidl.data.DataLoader``.
- ``presets``: the seed's final configuration (``--preset seed``) with where each value comes from.
- ``heatmap``: the heat map of ground-truth sign positions and the position filter drawn over it.
- ``engine``: training (DataLoader, ``LambdaLR`` warm-up/cosine that follows a time budget, and
  ``minidl.train.Trainer`` with the model's own losses), inference, evaluation
  (``minidl.metrics_detection``), crop classifiers, drawing. The command line is
  ``minidl detect train|eval|predict`` (``minidl/cli/detect.py``).

Elsewhere: the model, ``minidl.models.detection`` (``FasterRCNN``, the RPN, RoI heads, anchor
generator and presets; ``minidl.models.fasterrcnn`` in the zoo); the data,
``minidl.datasets.SyntheticScenes`` (the embedded seeded scene generator) and
``minidl.datasets.GTSDB``; the box operations (NMS, IoU, RoI Align), ``minidl.ops``.

Measured (``minidl detect train --time-budget 600 --gate --sign-classifier --classifier-epochs 5
--sign-mode rescore --ablation``; 2-core Xeon shared with other jobs, default 400 training and 100
held-out 256x160 scenes, tiny backbone): the detector trained from scratch in 600 s wall
(2236 steps of 4 images) and reached mAP@0.5 0.9995 (COCO AP@[.5:.95] 0.943, RPN recall 1.0 at
IoU 0.5 and 0.7) on the held-out split; the full pipeline 0.9907 (the background gate costs
0.008 on these scenes; the other stages change at most a few boxes). That run used the
detector's former hand-written loop; on the common road (DataLoader, LambdaLR, Trainer) the
detector learns as before, step for step: ``minidl detect train --seed 0 --max-steps 400`` gave
held-out mAP@0.5 0.415 (COCO AP 0.266, RPN recall@0.7 0.94) with the former loop and 0.455 (COCO
AP 0.315, RPN recall@0.7 0.96) with this one (the flips draw from other generators; training
losses per 100 steps 1.50/0.81/0.65 and 1.51/0.84/0.63), at the same cost per step.
"""
