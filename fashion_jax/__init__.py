"""fashion_jax: fashion landmark, category and attribute recognition in JAX/Flax.

    import fashion_jax
    model = fashion_jax.load("workdirs/fpm")        # a run's workdir, or an export folder
    results = model.predict(["photo.jpg"])          # named results in the photo's pixels

docs/inference.md describes the results. Importing the package defines no command-line flags
and leaves `XLA_FLAGS` alone: the command-line entry points add the package's XLA options
(`fashion_jax.xla_options`).
"""

import os as _os


def load(path: str, batch_size: int = 8, segmenter: str | None = None):
  """The trained model at `path`: a run's workdir (`trained.TrainedModel`: its best checkpoint,
  else the latest) or a folder written by `fashion-jax export` (`serving.ExportedModel`, run
  with jax, numpy and Pillow alone). Batches of `batch_size` images, the last one padded.
  `segmenter`: the FCN segmenter's converted weights, to make SisterNetwork's person masks from
  the photos (a workdir's model only: the segmenter needs flax)."""
  if _os.path.exists(_os.path.join(path, "model.json")):
    if segmenter:
      raise ValueError(f"{path} is an export: it runs without flax, which the FCN segmenter "
                       "needs; give the masks (predict(..., masks=...)) or load the workdir")
    from fashion_jax import serving

    return serving.ExportedModel(path, batch_size)
  from fashion_jax import trained

  return trained.TrainedModel(path, batch_size, segmenter)
