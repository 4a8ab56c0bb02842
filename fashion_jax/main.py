"""Command-line entry point.

  python -m fashion_jax.main --config=configs/fpm.py:runlocal --workdir=/tmp/fpm
  python -m fashion_jax.main --mode=eval --workdir=/tmp/fpm      # evaluate an existing run
  python -m fashion_jax.main --mode=eval --workdir=/tmp/fpm --config.data.categories="('dress',)"

Any config field can be overridden: `--config.batch_size=8 --config.data.data_dir=...`. With
`--mode=eval` (no `--config`), the run's own config is used and `--config.F=V` may change what is
evaluated (data fields, batch size, baselines; never the model); the results are named after the
overrides (results_test@data.categories=dress.json) and earlier results are kept.
Rerunning a training command on the same workdir resumes from its latest checkpoint. Exit
status: 0 done, 1 an error (its message says what and which file or config field), 2 a bad
command line, 128 + N stopped by signal N (SIGTERM: 143) after saving a checkpoint.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from fashion_jax import cli, writers

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally `path:variant`.",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.DEFINE_enum("mode", "train", ["train", "eval"],
                  "train (and evaluate), or only evaluate the best checkpoint of --workdir.")
flags.DEFINE_integer("restart_from", None,
                     "Resume from this step's checkpoint instead of the latest (0: start afresh); "
                     "the later checkpoints are moved to WORKDIR/set_aside_checkpoints/, not "
                     "deleted. For a run that diverged after its last checkpoint.")
flags.DEFINE_bool("distributed", False,
                  "Several processes (hosts): call jax.distributed.initialize(). Without the "
                  "three flags below it detects them from the cluster (Cloud TPU, SLURM, Open "
                  "MPI, Kubernetes).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "How many processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.")
flags.mark_flag_as_required("workdir")


EVAL_OVERRIDES: dict = {}  # `--mode=eval --config.F=V` without --config: for the run's config


def parse_flags(argv: list[str]) -> list[str]:
  """`cli.parse_flags`, with the `--config.F=V` overrides of `--mode=eval` (given without
  `--config`) set aside: they apply to the workdir's own config.json."""
  if ("--mode=eval" in argv or "--mode eval" in " ".join(argv)) and not any(
      a.startswith("--config=") for a in argv):
    given = [a for a in argv[1:] if a.startswith("--config.")]
    EVAL_OVERRIDES.update({a[len("--config."):].partition("=")[0]:
                           cli.literal(a.partition("=")[2]) for a in given})
    argv = [a for a in argv if a not in given]
  return cli.parse_flags(argv)


@cli.report_errors
def main(argv):
  writers.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import jax  # deferred so that --help is fast

  if FLAGS.distributed:
    timeout = (FLAGS.config or {}).get("heartbeat_timeout_seconds", 100)
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id, heartbeat_timeout_seconds=timeout)
  from fashion_jax import compile_cache, evaluate, train

  logging.info("compilation cache: %s", compile_cache.enable() or "off")

  logging.info("JAX %s: process %d/%d, devices %s", jax.__version__, jax.process_index(),
               jax.process_count(), jax.devices())
  if FLAGS.mode == "eval":
    evaluate.evaluate_workdir(FLAGS.workdir, FLAGS.config, EVAL_OVERRIDES)
  else:
    if FLAGS.config is None:
      raise app.UsageError("--config is required for training")
    try:
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.restart_from)
    except train.Stopped as e:
      logging.warning("%s", e)
      sys.exit(e.exit_status)
    except jax.errors.JaxRuntimeError as e:
      if jax.process_count() > 1:
        _peer_gone(e)
      raise


def _peer_gone(error) -> None:
  """Another process of a several-process run died (its collectives fail): one paragraph, and
  an exit that skips jax.distributed's shutdown barrier, which would wait for the dead
  process and then abort with pages of C++ logs."""
  import jax

  from fashion_jax import workdir as workdir_files

  folder = workdir_files.path(FLAGS.workdir, workdir_files.CHECKPOINTS)
  steps = [int(s) for s in os.listdir(folder) if s.isdigit()] if os.path.isdir(folder) else []
  kept = f"the checkpoint of step {max(steps)} is kept" if steps else "no checkpoint was saved"
  reason = str(error).strip().splitlines()[0][:300]
  sys.stdout.flush()
  sys.stderr.write(f"\nerror: another process of this run is gone ({reason}); process "
                   f"{jax.process_index()} stops too. {kept[0].upper()}{kept[1:]}: start every "
                   "process again with the same command to resume.\n")
  sys.stderr.flush()
  os._exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
