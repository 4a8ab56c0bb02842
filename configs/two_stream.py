r"""Two-stream multi-task network (Li et al., ICIP 2019) on DeepFashion Category & Attribute.

  python -m fashion_jax.main --config=configs/two_stream.py --workdir=/tmp/tsmt \
      --config.data.data_dir=DIR \
      --config.model.pretrained.classification_stream=resnet50.safetensors
  python -m fashion_jax.main --config=configs/two_stream.py:runlocal --workdir=/tmp/tsmt_local
  python -m fashion_jax.main --config=configs/two_stream.py:runlocal,no_boundary --workdir=...

Paper settings (sections 3-4): the bbox crop, 256x256 for the landmark stream (a 4-stack
hourglass with bottleneck blocks and intermediate supervision, 8 landmark heatmaps per stack)
and 224x224 for the classification stream (ImageNet ResNet-50, its classifier replaced by a
two-branch head: category and attributes); boundary and structure awareness; losses MSE
(landmarks), cross-entropy (category) and asymmetric weighted cross-entropy with positive
weight W = 332 (attributes); Adam, learning rate 1e-3 divided by 10 every 5 epochs; the landmark
stream pre-trained 10 epochs, then both streams 20 epochs; early stopping on validation. With
`--config.data.data_dir=DIR` the config reads `deepfashion_attributes` (coarse: 50 categories,
1000 attributes) from DIR; without, the built-in synthetic set.

Choices made here where the paper is silent (each a config value):
  * boundary awareness on the ResNet stage1 output (56x56x256, `model.boundary_at`): fine enough
    for the garment's outline, early enough for every later stage to use it; applied as
    F' = F * (1 + A) (`model.boundary_formula="residual"`; "multiply" is F * A); A blurred with
    sigma 1.5 feature pixels; landmarks from the last stack's peaks of at least 0.3 (targets
    peak at 1), at least 3 of them, else A = 1;
  * structure awareness after ResNet stage2 (28x28x512, `model.structure_at`): the last stack's
    64x64x256 features resized to 28x28, concatenated, restored to 512 channels by a 1x1
    convolution, batch norm and ReLU; the classification loss's gradient flows back into the
    landmark stream through them (`model.structure_gradient`; the paper does not say, and on
    the synthetic set this costs landmark accuracy: docs/ablations.md);
  * the input crop is resized to 224 on device for the classification stream, so both streams
    see the same crop;
  * the heatmap convolutions start from N(0, 0.001^2) weights (near-empty maps, as pose
    codebases initialise their last layer): with the default initialisation the maps start
    about 60x too energetic and, on the CPU variant, the landmark stream spent its whole
    pre-training phase shrinking them (validation NE 0.53 after it, against 0.078 with this
    initialisation);
  * heatmap targets: Gaussians of sigma 4 input pixels (1 heatmap pixel, as the stacked
    hourglass), visible landmarks only; "MSE" as the mean over every element of the 8 maps
    (masked maps count as zero error), summed over the 4 stacks;
  * attribute loss: W = 332 on positives, 1 on negatives, averaged over the known labels;
  * loss weights: landmarks 100 (the per-element MSE is small), category 1, attributes 1;
  * the pre-training phase trains the landmark stream only (the classification stream, and its
    batch-norm statistics, stay as loaded) with the classification losses off; each phase starts
    its own Adam and its own "divide by 10 every 5 epochs" schedule;
  * batch 32, flip / zoom / shift / colour augmentation as the landmark-attention config;
  * best checkpoint by validation category top-3; early stopping after 3 evaluations (epochs)
    of the joint phase without improvement.

Variants (comma-separated after the path): `runlocal` (CPU size), and the ablations of section
4.4: `no_boundary`, `no_structure`, `neither`, `gt_boundary` (the boundary from ground-truth
landmarks: an upper bound for the boundary awareness), `detached` (no gradient of the
classification loss into the landmark stream: `model.structure_gradient=False`), `multiply`
(the background-suppressing boundary formula F * A) and `parameter_free` (structure awareness
without the 1x1 conv + BN: the landmark features added, `model.structure_fusion="add"`; the
paper calls its sharing parameter-free). `street` adds a final evaluator of the street views
alone (results_test_street.json; synthetic data only, which has shop and street views).
"""

from fashion_jax import config_base

ABLATIONS = ("no_boundary", "no_structure", "neither", "gt_boundary", "detached", "multiply",
             "parameter_free")
# `street`: a second final evaluator on the street views alone (the synthetic set has shop and
# street views; DeepFashion Category & Attribute has no domain field), for the claim that
# boundary awareness helps most on cluttered backgrounds.
EXTRA = ("street",)


def get_config(arg=None):
  variants = config_base.parse_variants(arg, flags=("runlocal", *ABLATIONS, *EXTRA))
  c = config_base.base_config()
  c.system = "two_stream"
  c.batch_size = 32
  c.num_epochs = 30.0
  config_base.deepfashion_category_data(c.data, image_size=(256, 256))
  c.model.update(dict(
      stacks=4, hourglass_depth=4, hourglass_features=256, heatmap_init_std=0.001,
      resnet_stage_sizes=(3, 4, 6, 3),
      resnet_width=64, classification_size=224, boundary_source="predicted",
      boundary_at="stage1", boundary_formula="residual", boundary_sigma=1.5,
      boundary_min_score=0.3, boundary_min_points=3, structure_at="stage2",
      structure_gradient=True, structure_fusion="conv",
      pretrained=dict(classification_stream=""),
      pretrained_unused=("fc",)))  # ResNet's ImageNet classifier, replaced by the two heads
  c.loss.update(dict(weights=dict(landmarks=100.0, category=1.0, attributes=1.0),
                     heatmap_sigma_input_px=4.0, attribute_class_weights=(1.0, 332.0),
                     attribute_normalize="count"))
  c.optimizer.update(dict(name="adam", learning_rate=1e-3, schedule="step",
                          decay_every_epochs=5.0, decay_factor=0.1))
  c.phases = [
      dict(name="landmark_stream", num_epochs=10, trainable="landmark_stream/.*",
           loss=dict(weights=dict(landmarks=100.0, category=0.0, attributes=0.0))),
      dict(name="joint", num_epochs=20),
  ]
  c.early_stopping_patience = 3
  c.log_every_steps = 100
  c.checkpoint_every_steps = 2000

  if variants.get("no_boundary") or variants.get("neither"):
    c.model.boundary_source = "none"
  if variants.get("no_structure") or variants.get("neither"):
    c.model.structure_at = ""
  if variants.get("gt_boundary"):
    c.model.boundary_source = "ground_truth"
  if variants.get("detached"):  # the landmark stream trained by its own loss only
    c.model.structure_gradient = False
  if variants.get("multiply"):  # F' = F * A: the background's features suppressed
    c.model.boundary_formula = "multiply"
  if variants.get("parameter_free"):  # F' = F + [S; S]: no 1x1 conv + BN
    c.model.structure_fusion = "add"
  if variants.get("street"):  # scored on street views alone too: results_test_street.json
    c.evals = (dict(name="street", data=dict(eval_domain="street")),)
  if variants.get("runlocal"):  # 2 CPU cores: 2 small hourglasses, a narrow ResNet, 64x64
    c.batch_size = 16
    c.data.synth = config_base.synth_data(image_size=128, num_train=2000, num_validation=200,
                                          num_test=400)
    c.data.image_size = (64, 64)
    c.model.update(dict(stacks=2, hourglass_depth=3, hourglass_features=32,
                        resnet_stage_sizes=(1, 1, 1, 1), resnet_width=16,
                        classification_size=56, boundary_sigma=1.0))
    c.loss.heatmap_sigma_input_px = 4.0  # 1 heatmap pixel, as at paper size
    # W follows the paper's rule, negatives per positive: ~332 on DeepFashion, ~3 here (a
    # synthetic garment has 9 positive attributes of 41 on average).
    c.loss.attribute_class_weights = (1.0, 3.0)
    c.phases = [
        dict(name="landmark_stream", num_epochs=3, trainable="landmark_stream/.*",
             loss=dict(weights=dict(landmarks=100.0, category=0.0, attributes=0.0))),
        dict(name="joint", num_epochs=12),
    ]
    c.optimizer.decay_every_epochs = 8.0
    c.early_stopping_patience = 0
    c.log_every_steps = 20
    c.eval_every_epochs = 2.0
  return c
