r"""Fashion Pose Machine (Hu et al. 2018) on the 24 FashionAI keypoints.

  python -m fashion_jax.main --config=configs/fpm.py --workdir=/tmp/fpm
  python -m fashion_jax.main --config=configs/fpm.py:runlocal --workdir=/tmp/fpm_local

Paper settings (section 3.2): 512x512 input, 64x64 belief maps, 6 stages, 24 keypoints +
background, stage-wise L2 loss summed over stages, Adam at 1e-4, batch 5, 6 epochs. The paper
trains on FashionAI: give `--config.data.data_dir=DIR` (prepared with fashion_jax.data.prepare)
and the config reads `fashionai_keypoints` from it; without a data dir it uses the built-in
synthetic set with FashionAI's split sizes (18,420 / 8,107 / 5,076).

Choices the paper leaves open, made here: layer sizes from the convolutional pose machine it
builds on, including CPM's per-stage 5x5x32 convolution on the shared image features of stages
t >= 2 (see fashion_jax/models/fpm.py); target Gaussian sigma 8 input pixels (1 belief-map
pixel at stride 8), on every annotated keypoint, visible or occluded;
the whole image resized to the input (FashionAI images are 512x512); augmentation with
horizontal flip, +-15 degree rotation, 0.8-1.2 zoom and colour jitter (the paper names none);
losses averaged over the batch (sum over stages, pixels and channels per image).

FashionAI as downloaded has labels only in its training part (its test CSVs have no keypoints):
then 5% and 10% of the labelled images, chosen by a hash of the image id (`data.holdout`), stand
in for validation and test, and the run says so in its log and in results_test.json.
"""

from fashion_jax import config_base


def get_config(arg=None):
  variants = config_base.parse_variants(arg, flags=("runlocal",))
  c = config_base.base_config()
  c.system = "fpm"
  c.batch_size = 5
  c.num_epochs = 6.0
  c.data.paper_dataset = "fashionai_keypoints"
  c.data.synth = config_base.synth_data(
      image_size=512, num_train=18420, num_validation=8107, num_test=5076)
  c.data.image_size = (512, 512)
  c.data.crop = "image"
  c.data.augment.update(dict(flip=True, scale=(0.8, 1.2), rotation=15.0, translate=0.05,
                             colour=0.2))
  c.model.update(dict(
      num_stages=6, feature_widths=(128, 128, 128, 32), feature_kernels=(9, 9, 9, 5),
      stage1_widths=(512, 512), stage1_kernels=(9, 1), refine_width=128, refine_kernel=11,
      refine_depth=3))
  c.loss.heatmap_sigma_input_px = 8.0
  c.optimizer.update(dict(name="adam", learning_rate=1e-4, schedule="constant"))
  c.log_every_steps = 100
  c.checkpoint_every_steps = 2000

  if variants.get("runlocal"):  # 14 minutes on 2 CPU cores (measured), data generation included
    c.batch_size = 16
    c.num_epochs = 8.0
    c.data.synth = config_base.synth_data(
        image_size=160, num_train=2000, num_validation=200, num_test=400)
    c.data.image_size = (128, 128)
    c.model.update(dict(num_stages=3, feature_widths=(32, 32, 32, 16),
                        feature_kernels=(5, 3, 3, 3), stage1_widths=(64, 64),
                        stage1_kernels=(5, 1), refine_width=32, refine_kernel=7))
    c.optimizer.learning_rate = 1e-3
    c.log_every_steps = 20
    c.eval_every_epochs = 2.0
  return c
