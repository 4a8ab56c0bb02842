"""Toy-size configs of all five systems on the tiny synthetic set (a few seconds of training
each), for tests that need a trained workdir of every system: inference, export, serving."""

from conftest import TINY_SYNTH

SYSTEMS = ("fpm", "landmark_attention", "two_stream", "sister", "mtct")


def _common(c, data_dir, **synth):
  c.data.name, c.data.data_dir = "fashion_synth", data_dir
  c.data.synth.update(dict(TINY_SYNTH, **synth))
  c.data.image_size, c.data.num_threads = (32, 32), 1
  c.batch_size, c.num_devices, c.log_every_steps, c.progress = 8, 1, 1, False
  c.max_steps_per_phase, c.eval_every_epochs, c.eval.baselines = 2, 100.0, ()
  return c


def tiny_config(system: str, data_dir: str):
  import importlib

  c = importlib.import_module(f"configs.{system}").get_config("runlocal")
  if system == "fpm":
    c.model.update(dict(num_stages=2, feature_widths=(8, 8, 8, 8), feature_kernels=(3, 3, 3, 3),
                        stage1_widths=(8, 8), stage1_kernels=(3, 1), refine_width=8,
                        refine_kernel=3, refine_depth=1))
  elif system == "landmark_attention":
    c.model.update(dict(vgg_widths=(4, 8, 8, 16, 16), fc_width=32, landmark_widths=(8, 8, 8, 8),
                        squeeze_widths=(8, 8), expand_width=8))
  elif system == "two_stream":
    c.model.update(dict(stacks=2, hourglass_depth=1, hourglass_features=8,
                        resnet_stage_sizes=(1, 1, 1, 1), resnet_width=4,
                        classification_size=28, boundary_sigma=1.0))
  elif system == "sister":
    c.model.update(dict(stage_sizes=(1, 1, 1, 1), segmented_stage_sizes=(1, 1, 1, 1), width=4,
                        segmented_width=4, fc_width=8))
  elif system == "mtct":
    c.model.update(dict(fc_width=8, width_scale=0.05))
    c.batch_size = 4
    return _common(c, data_dir, num_train=32, views_per_item=2, attributes="xdomain")
  return _common(c, data_dir)
