"""Shared fixtures. Eight fake CPU devices so that sharded runs can be compared with one device;
set before anything imports jax."""

import os
import textwrap

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()

import pytest  # noqa: E402

from fashion_jax import xla_options  # noqa: E402

# The test session is an entry point too: the same XLA options as the commands it compares with.
xla_options.apply()


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent compilation cache for the session: the many tiny runs that compile the same
  steps (resume, phases, baselines) load them instead. Subprocesses and xdist workers share it."""
  from fashion_jax import compile_cache

  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):  # workers share one cache (entries are atomic files)
    root = root.parent
  path = str(root / "jax_cache")
  os.environ["FASHION_JAX_CACHE_DIR"] = path
  compile_cache.enable(path)
  return path

# Shop views only (views_per_item=1): centred, upright garments that a toy model learns in a
# few dozen steps; street views are exercised by tests/test_synth.py and the runlocal configs.
TINY_SYNTH = dict(image_size=64, num_train=48, num_validation=16, num_test=16, seed=0,
                  views_per_item=1)


@pytest.fixture(scope="session")
def synth_data_dir(tmp_path_factory):
  """A data dir holding the tiny synthetic dataset of `TINY_SYNTH`, generated once."""
  from fashion_jax.data import datasets

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  datasets.ensure_prepared(datasets.get_builder("fashion_synth", data_dir, config=TINY_SYNTH))
  return data_dir


@pytest.fixture
def tiny_fpm_config(synth_data_dir):
  """FPM at toy size on the tiny dataset: 32x32 input, 2 stages, a few steps, one device."""
  from configs import fpm

  c = fpm.get_config("runlocal")
  c.data.name = "fashion_synth"  # a data dir alone would select the paper's dataset
  c.data.data_dir = synth_data_dir
  c.data.synth.update(TINY_SYNTH)
  c.data.image_size = (32, 32)
  c.data.num_threads = 1
  c.model.update(dict(num_stages=2, feature_widths=(8, 8, 8, 8), feature_kernels=(3, 3, 3, 3),
                      stage1_widths=(16, 16), stage1_kernels=(3, 1), refine_width=16,
                      refine_kernel=3, refine_depth=1))
  c.batch_size = 8
  c.num_devices = 1
  c.num_epochs = 1.0
  c.log_every_steps = 1
  c.eval_every_epochs = 100.0  # evaluate at the end of the phase only
  c.progress = False
  c.eval.baselines = ()
  return c


@pytest.fixture
def toy_config_file(tmp_path, synth_data_dir):
  path = tmp_path / "toy_fpm.py"
  path.write_text(textwrap.dedent(f"""
      from configs import fpm

      def get_config(arg=None):
        c = fpm.get_config(arg)
        c.data.name, c.data.data_dir = "fashion_synth", {synth_data_dir!r}
        c.data.synth.update({TINY_SYNTH!r})
        c.data.image_size, c.data.num_threads = (32, 32), 1
        c.model.update(dict(num_stages=2, feature_widths=(8, 8, 8, 8),
                            feature_kernels=(3, 3, 3, 3), stage1_widths=(8, 8),
                            stage1_kernels=(3, 1), refine_width=8, refine_kernel=3,
                            refine_depth=1))
        c.batch_size, c.num_devices, c.max_steps_per_phase = 8, 1, 2
        c.progress, c.eval.baselines = False, ("training_mean",)
        return c
      """))
  return str(path)


@pytest.fixture(scope="session")
def fpm_workdir(synth_data_dir, tmp_path_factory):
  """A toy FPM run (keypoints, whole-image crop) trained for 2 steps: a workdir to predict with."""
  from fixtures.tiny_systems import tiny_config

  from fashion_jax import train

  workdir = str(tmp_path_factory.mktemp("fpm") / "run")
  train.train_and_evaluate(tiny_config("fpm", synth_data_dir), workdir)
  return workdir
