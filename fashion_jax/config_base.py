"""Fields shared by every system's config; a config file starts from `base_config()`.

Kept in the package (not in `configs/`) so config files can import it from anywhere.
"""

from __future__ import annotations

import ml_collections


def synth_data(image_size: int = 256, num_train: int = 4000, num_validation: int = 500,
               num_test: int = 500, seed: int = 0,
               attributes: str = "deepfashion") -> ml_collections.ConfigDict:
  """Builder config of the built-in synthetic dataset (generated on first use); `attributes`:
  "deepfashion" (multi-label groups) or "xdomain" (nine single-label groups)."""
  return ml_collections.ConfigDict(dict(
      image_size=image_size, num_train=num_train, num_validation=num_validation,
      num_test=num_test, seed=seed, views_per_item=2, attributes=attributes))


def deepfashion_category_data(data_cfg, image_size: tuple[int, int]) -> None:
  """The DeepFashion Category & Attribute settings the landmark-attention and two-stream configs
  share: the coarse annotations (1000 attributes), the bbox crop, mild augmentation, and a
  synthetic stand-in of the same split proportions."""
  data_cfg.paper_dataset = "deepfashion_attributes"
  data_cfg.builder_config = "coarse"
  data_cfg.synth = synth_data(image_size=256, num_train=20000, num_validation=2000,
                              num_test=2000)
  data_cfg.image_size = image_size
  data_cfg.crop = "bbox"
  data_cfg.augment.update(dict(flip=True, scale=(0.9, 1.1), translate=0.05, colour=0.1))


def dataset_name(data_cfg) -> str:
  """The dataset a data config reads (see `data.name` in `base_config`)."""
  if data_cfg.name:
    return data_cfg.name
  return data_cfg.paper_dataset if data_cfg.data_dir else "fashion_synth"


def builder_config(data_cfg):
  """The builder config for `dataset_name(data_cfg)`: the synthetic sizes, or a name."""
  if dataset_name(data_cfg) == "fashion_synth":
    return data_cfg.synth.to_dict()
  return data_cfg.builder_config or None


def parse_variants(arg: str | None, flags=(), options=None) -> dict:
  """The variant part of `--config=path:variant` as a dict of typed values.

  `"runlocal,stages=3,backbone=resnet101"` -> {"runlocal": True, "stages": 3,
  "backbone": "resnet101"} with flags=("runlocal",), options={"stages": int, "backbone":
  ("resnet50", "resnet101")}.

  Args:
    flags: the names allowed alone (e.g. "runlocal").
    options: {name: the allowed values (a tuple of strings) or their type (int, float, str)}
      for `name=value` parts; a typed value arrives as that type.

  Raises:
    ValueError: one paragraph naming every unknown or ill-typed part and listing what is
      allowed.
  """
  options = options or {}
  parsed, unknown = {}, []
  for part in filter(None, (p.strip() for p in (arg or "").split(","))):
    name, eq, value = part.partition("=")
    if not eq and name in flags:
      parsed[name] = True
    elif eq and name in options and (typed := _typed(value, options[name])) is not None:
      parsed[name] = typed
    else:
      unknown.append(part)
  if unknown:
    allowed = [*flags, *(f"{k}={_allowed(v)}" for k, v in options.items())]
    raise ValueError(f"unknown config variant(s) {unknown}; allowed (comma-separated): "
                     f"{', '.join(allowed)}")
  return parsed


def _typed(value: str, allowed):
  """`value` as the option allows it (a choice, or converted to its type), else None."""
  if isinstance(allowed, type):
    try:
      return allowed(value)
    except ValueError:
      return None
  return value if value in allowed else None


def _allowed(allowed) -> str:
  return f"<{allowed.__name__}>" if isinstance(allowed, type) else "|".join(allowed)


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.system = ""
  c.seed = 0
  c.batch_size = 32  # global, over all devices and processes
  c.eval_batch_size = 0  # 0: same as batch_size
  c.num_epochs = 1.0
  c.num_devices = 0  # 0: every device; the mesh splits the batch over them
  # Empty: one phase of num_epochs. Else a list of dicts, each with `name`, `num_epochs` or
  # `num_steps`, and optionally `trainable` (a regex over parameter paths) and overrides of
  # `optimizer`, `loss`, `data` and `model` (see fashion_jax/phases.py and docs/training.md).
  c.phases = []
  c.max_steps_per_phase = 0  # >0 caps each phase (smoke tests, benchmarks)
  # >0: stop training when this many evaluations of the last phase in a row did not improve the
  # best checkpoint's metric (the final evaluation then uses the best checkpoint).
  c.early_stopping_patience = 0

  c.data = ml_collections.ConfigDict()
  # "": the paper's dataset (`paper_dataset`) when `data_dir` is given, else the synthetic one.
  c.data.name = ""
  c.data.paper_dataset = "fashion_synth"
  c.data.data_dir = ""  # "": $FASHION_JAX_DATA_DIR or ~/tensorflow_datasets
  c.data.builder_config = ""  # a real dataset's builder config name ("": its default)
  c.data.synth = synth_data()  # sizes of the synthetic dataset, when it is the one used
  c.data.train_split = "train"
  c.data.eval_split = "validation"  # periodic evaluation and best-checkpoint selection
  c.data.test_split = "test"  # final evaluation
  # Where the dataset has no labelled eval or test split (FashionAI as downloaded), these
  # fractions of the labelled training split stand in for them. Chosen by a hash of each
  # record's item id (views of one garment stay together) or, without item ids, of its image
  # id and `seed`: the same records on every machine. See fashion_jax/data/splits.py.
  c.data.holdout = ml_collections.ConfigDict(dict(validation=0.05, test=0.1, seed=0))
  # Cross-validation: >0 makes the test role fold `fold` of `num_folds` of the training split
  # (by record index and data.holdout.seed; `fashion-jax cross-validate` runs every fold).
  c.data.num_folds = 0
  c.data.fold = 0
  c.data.domain = ""  # "shop" or "street": train on that domain's examples only
  c.data.eval_domain = ""  # the same for evaluation (eval and test)
  # FashionAI category names ("blouse", "dress", ...): every role keeps only their records
  # (after the hold-out is drawn, so its fractions hold for them). Empty: all.
  c.data.categories = ()
  # < 1: in training, only this fraction of street items (by a hash of the item id) keeps its
  # class labels; the other street images are unlabelled (the curriculum-transfer premise).
  c.data.street_label_fraction = 1.0
  # Training batches of tuples, for systems whose batch source reads these (batch_sources.
  # Configured): "pair", "triplet" or "views"; anchors from `anchor_domain`, partners from
  # `partner_domain` ("" any). "": one example per row.
  c.data.tuples = ""
  c.data.anchor_domain = ""
  c.data.partner_domain = ""
  c.data.eval_max_examples = 0  # 0: the whole split
  c.data.image_size = (224, 224)  # network input (H, W)
  c.data.crop = "bbox"  # "bbox" or "image"
  c.data.bbox_margin = 0.0
  c.data.with_mask = False
  # "white" or "black": batches also hold `segmented_image`, the input with its background (mask
  # 0) filled with that colour; the dataset must have masks. "": none.
  c.data.segmented = ""
  c.data.augment = ml_collections.ConfigDict(dict(
      flip=False, scale=(1.0, 1.0), rotation=0.0, translate=0.0, colour=0.0))
  c.data.num_threads = 2
  c.data.prefetch = 4

  c.model = ml_collections.ConfigDict()
  c.model.dtype = "float32"  # compute dtype; parameters stay float32
  # Converted ImageNet weights (tools/convert_weights.py), one file per sub-module:
  # {top-level module name: path}; an empty path loads nothing. `pretrained_unused` lists the
  # file entries the system may drop (e.g. the ImageNet classifier it replaced).
  c.model.pretrained = ml_collections.ConfigDict()
  c.model.pretrained_unused = ()
  # On a real dataset a training run refuses to start while a `pretrained` entry is empty (the
  # papers start those networks from ImageNet weights); True says random weights are deliberate.
  c.model.from_scratch = False
  c.loss = ml_collections.ConfigDict()

  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, momentum=0.9,
      weight_decay=0.0, schedule="constant", decay_every_epochs=1.0, decay_factor=0.1,
      decay_steps=0, warmup_steps=0, grad_clip_norm=0.0))

  c.log_every_steps = 50
  c.eval_every_epochs = 1.0
  c.checkpoint_every_steps = 1000
  # Several processes (--distributed): they agree every `stop_sync_every_steps` steps whether
  # one was signalled, so all checkpoint the same step and exit; a process that is gone is
  # noticed within `heartbeat_timeout_seconds` (jax.distributed's heartbeat).
  c.stop_sync_every_steps = 10
  c.heartbeat_timeout_seconds = 100
  c.progress = True
  c.eval = ml_collections.ConfigDict(dict(baselines=("untrained", "training_mean"),
                                          baseline_examples=2000))
  # More final evaluations beside the run's own (big_vision's `evals`): a tuple of dicts with a
  # `name` and `data` overrides of the evaluation fields (config_check.EVAL_DATA_FIELDS), e.g.
  # dict(name="shop", data=dict(eval_domain="shop")); each prints its table and writes
  # results_test_<name>.json.
  c.evals = ()
  return c


def scale_batch_size(config, batch_size: int) -> None:
  """Sets `config.batch_size` to `batch_size` and scales every learning rate with it.

  The linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): a batch k times
  larger takes a learning rate k times larger. Documented in docs/reproduce.md#scaling-the-batch.
  Scaled in place: `config.optimizer.learning_rate` and each phase's override of it
  (`config.phases[i]["optimizer"]["learning_rate"]`), all by `batch_size / config.batch_size`.
  A phase cannot override the batch size (phases.PHASE_KEYS), so one factor holds for every
  phase. `eval_batch_size` is left alone (0 already follows `batch_size`); so are counts of
  steps (`warmup_steps`, `decay_steps`, a phase's `num_steps`), while lengths in epochs keep
  their meaning with the new batch.

  Args:
    config: a run's ConfigDict (`base_config()` and a system's fields); modified.
    batch_size: the new global batch size (over all devices), >= 1.

  Raises:
    ValueError: for a batch size that is not an integer >= 1, or a config whose batch size is
      below 1.
  """
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size = {batch_size!r}: expected an integer >= 1")
  if config.batch_size < 1:
    raise ValueError(f"config.batch_size = {config.batch_size!r}: nothing to scale from")
  factor = batch_size / config.batch_size
  config.batch_size = batch_size
  config.optimizer.learning_rate = config.optimizer.learning_rate * factor
  phases = []
  for phase in config.get("phases") or []:
    optimizer = phase.get("optimizer") or {}
    if "learning_rate" in optimizer:
      # New dicts, not the old ones changed: a dict two phases (or another config) share would
      # otherwise be scaled twice.
      phase = {**dict(phase), "optimizer": {
          **dict(optimizer), "learning_rate": optimizer["learning_rate"] * factor}}
    phases.append(phase)
  if phases:
    config.phases = type(config.phases)(phases)
