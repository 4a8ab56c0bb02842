r"""Landmark-driven attention network (Liu & Lu 2018) on DeepFashion Category & Attribute.

  python -m fashion_jax.main --config=configs/landmark_attention.py --workdir=/tmp/lda \
      --config.data.data_dir=DIR --config.model.pretrained=vgg16.safetensors
  python -m fashion_jax.main --config=configs/landmark_attention.py:runlocal --workdir=/tmp/lda
  python -m fashion_jax.main --config=configs/landmark_attention.py:no_attention --workdir=...

Paper settings (section 3.2): bbox crop resized to 224x224; ImageNet VGG-16 to conv4_3; landmark
branch to 224x224x8 heatmaps with an L2 loss on Gaussian targets; attention branch with
F_new = (1/2 + A) * F; the rest of VGG-16; category and attribute heads with cross-entropy; 8
landmarks, 50 category names (46 used), 1000 attributes in 5 groups (the `coarse` annotations).
With `--config.data.data_dir=DIR` the config reads `deepfashion_attributes` from DIR (prepare it
with fashion_jax.data.prepare); without, the built-in synthetic set.
ImageNet weights: tools/convert_weights.py (docs/pretrained.md), then
`--config.model.pretrained=PATH`; without them the backbone starts from random weights.

Choices the paper leaves open, made here:
  * optimiser and schedule: Adam 1e-4, batch 16, 12 epochs, learning rate / 10 after epoch 8;
  * loss weights: landmarks 100, category 1, attributes 20 (the per-element heatmap MSE and the
    per-attribute BCE are orders of magnitude smaller than the category CE; the weights bring
    their gradients to a comparable scale);
  * attribute loss: sigmoid (binary) cross-entropy per attribute, unknown labels masked;
  * heatmap targets: Gaussian with sigma 5 input pixels, visible landmarks only (the maps of
    occluded, truncated and absent landmarks are masked out of the loss);
  * the width at 112x112 in the landmark branch (32) and between the attention's transposed
    convolutions (64); the paper's printed 7x7x28 squeeze is kept as printed;
  * M_info downsampling with antialiasing (see lda_branches.landmark_information);
  * augmentation: horizontal flip, 0.9-1.1 zoom, 5% shift, mild colour jitter;
  * the best checkpoint is chosen by validation category top-3 accuracy.

`:runlocal` (CPU, no ImageNet weights) trains a narrow VGG-16 with batch norm from scratch at
64x64: without ImageNet initialisation the plain 13-convolution VGG needs several hundred steps
before its category loss moves; with batch norm it reaches 96% category top-3 on the synthetic
test split in 2,500 steps, 6.8 minutes (docs/synthetic.md has the full comparison).
"""

from fashion_jax import config_base


def get_config(arg=None):
  c = config_base.base_config()
  c.system = "landmark_attention"
  c.batch_size = 16
  c.num_epochs = 12.0
  c.data.paper_dataset = "deepfashion_attributes"
  c.data.builder_config = "coarse"
  c.data.synth = config_base.synth_data(image_size=256, num_train=20000, num_validation=2000,
                                        num_test=2000)
  c.data.image_size = (224, 224)
  c.data.crop = "bbox"
  c.data.augment.update(dict(flip=True, scale=(0.9, 1.1), translate=0.05, colour=0.1))
  c.model.update(dict(
      attention=True, vgg_widths=(64, 128, 256, 512, 512), fc_width=4096,
      landmark_widths=(64, 64, 32, 16), squeeze_widths=(32, 28), expand_width=64,
      dropout_rate=0.5, batch_norm=False, pretrained="", pretrained_at="backbone",
      pretrained_unused=("fc8",)))
  c.loss.update(dict(weights=dict(landmarks=100.0, category=1.0, attributes=20.0),
                     heatmap_sigma=5.0, attribute_positive_weight=1.0))
  c.optimizer.update(dict(name="adam", learning_rate=1e-4, schedule="step",
                          decay_every_epochs=8.0, decay_factor=0.1))
  c.log_every_steps = 100
  c.checkpoint_every_steps = 2000

  variants = set((arg or "").split(",")) - {""}
  if "no_attention" in variants:  # the plain multi-task VGG-16 baseline of the ablation
    c.model.attention = False
  if "runlocal" in variants:  # 7 minutes on 2 CPU cores: a narrow VGG-16-BN at 64x64
    c.batch_size = 16
    c.num_epochs = 20.0
    c.data.synth = config_base.synth_data(image_size=128, num_train=2000, num_validation=200,
                                          num_test=400)
    c.data.image_size = (64, 64)
    c.model.update(dict(vgg_widths=(16, 32, 32, 64, 64), fc_width=256,
                        landmark_widths=(32, 32, 16, 16), squeeze_widths=(16, 16),
                        expand_width=32, dropout_rate=0.2, batch_norm=True))
    c.loss.heatmap_sigma = 2.0
    c.optimizer.update(dict(learning_rate=1e-3, decay_every_epochs=14.0))
    c.log_every_steps = 20
    c.eval_every_epochs = 2.0
  unknown = variants - {"runlocal", "no_attention"}
  if unknown:
    raise ValueError(f"unknown variants {sorted(unknown)}; use runlocal and/or no_attention")
  return c
