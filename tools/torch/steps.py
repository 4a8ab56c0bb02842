"""tools/compare_torch's PyTorch side: each model's Adam step, with the same losses as the JAX
system's step, against fixed random inputs and targets (their values do not change the time).

  step = torch_steps.torch_step("two_stream", configs.two_stream.get_config(), batch, side)
  loss = step()  # one step; returns the loss
"""

from __future__ import annotations

import torch
from fashion_jax.data import schema
from fashion_jax.systems import mtct as mtct_model
from fashion_jax.tools import benchmarking
from tools.torch import reference as torch_reference
from tools.torch import systems as torch_systems
from torch.nn import functional


def _pose_machine_loss(config, images):
  net = torch_systems.PoseMachine(config.model)
  with torch.no_grad():
    target = torch.rand_like(net(images[:1]).expand(-1, len(images), -1, -1, -1))
  return net, lambda: ((net(images) - target) ** 2).sum(dim=(2, 3, 4)).mean(dim=1).sum()


def _deepfashion_loss(net, config, images, maps_shape):
  """Landmark MSE, category cross-entropy and class-weighted attribute BCE of `net(images)`
  against fixed random targets, with the config's loss weights, attribute class weights and their
  normalisation (as `fashion_jax.losses.sigmoid_cross_entropy`). `maps_shape`: the landmark
  heatmaps' shape, [..., B, 8, h, w]."""
  batch = len(images)
  heat = torch.rand(maps_shape)
  category = torch.randint(0, net.category.out_features, (batch,))
  attributes = torch.randint(0, 2, (batch, net.attributes.out_features)).float()
  weights = config.loss.weights

  def loss_fn():
    maps, cat_logits, attr_logits = net(images)
    return (weights.landmarks * landmark_loss(maps, heat)
            + weights.category * functional.cross_entropy(cat_logits, category)
            + weights.attributes * attribute_loss(attr_logits, attributes, config.loss))
  return loss_fn


def landmark_loss(maps, targets):
  """`fashion_jax.systems.deepfashion.landmark_heatmap_loss` with every landmark visible: the mean
  squared error over every element of each output's maps, summed over stacked outputs.
  maps: [B, L, h, w] or [S, B, L, h, w]; targets: the same shape."""
  per_stack = functional.mse_loss(maps, targets, reduction="none").flatten(-4).mean(-1)
  return per_stack.sum()


def attribute_loss(logits, labels, loss_cfg):
  """`fashion_jax.losses.sigmoid_cross_entropy` with every label known: BCE weighted by
  `loss_cfg.attribute_class_weights` (negative, positive), over the label count or the weight
  sum (`loss_cfg.attribute_normalize`)."""
  negative, positive = loss_cfg.attribute_class_weights
  class_weights = labels * positive + (1 - labels) * negative
  total = functional.binary_cross_entropy_with_logits(logits, labels, weight=class_weights,
                                                      reduction="sum")
  return total / (class_weights.sum() if loss_cfg.attribute_normalize == "weight"
                  else labels.numel())


def _landmark_attention_loss(config, images):
  net = torch_systems.LandmarkAttention(config.model, *benchmarking.DEEPFASHION_HEAD_SIZES)
  side = images.shape[-1]
  return net, _deepfashion_loss(net, config, images, (len(images), 8, side, side))


def _two_stream_loss(config, images):
  net = torch_systems.TwoStream(config.model, *benchmarking.DEEPFASHION_HEAD_SIZES).train()
  side = images.shape[-1] // 4
  shape = (config.model.stacks, len(images), 8, side, side)
  return net, _deepfashion_loss(net, config, images, shape)


def _sister_loss(config, images):
  binary, class_counts = len(schema.DCSA_BINARY_LABELS), [
      len(v) for v in schema.DCSA_MULTICLASS_LABELS.values()]
  net = torch_systems.SisterNetA(config.model, binary + sum(class_counts)).train()
  batch = len(images)
  segmented = torch.randn_like(images)
  targets = torch.randint(0, 2, (batch, binary)).float()
  classes = [torch.randint(0, n, (batch,)) for n in class_counts]

  def loss_fn():
    parts = net(images, segmented).split([binary, *class_counts], dim=1)
    per_label = [functional.binary_cross_entropy_with_logits(parts[0], targets,
                                                             reduction="none").mean(0)]
    per_label += [functional.cross_entropy(p, c).reshape(1)
                  for p, c in zip(parts[1:], classes, strict=True)]
    return torch.cat(per_label).mean()
  return net, loss_fn


def _mtct_loss(config, images):
  sizes = mtct_model.check_groups(benchmarking.benchmark_spec(config))
  net = torch_systems.MultiTaskNetwork(benchmarking.benchmark_phase(config).model, sizes,
                                       images.shape[-1])
  labels = [torch.randint(0, n, (len(images),)) for n in sizes]
  return net, lambda: sum(functional.cross_entropy(logits, y)
                          for logits, y in zip(net(images), labels, strict=True))


def _classifier_loss(name, images):
  net = torch_reference.build(name).train()
  labels = torch.randint(0, 1000, (len(images),))
  return net, lambda: functional.cross_entropy(net(images)["logits"], labels)


TORCH_LOSSES = {"fpm": _pose_machine_loss, "fpm@256": _pose_machine_loss,
                "landmark_attention": _landmark_attention_loss, "two_stream": _two_stream_loss,
                "sister": _sister_loss, "mtct": _mtct_loss}


def torch_step(name: str, config, batch: int, side: int):
  """The PyTorch counterpart's Adam step on fixed random inputs and targets."""
  torch.manual_seed(0)
  images = torch.randn(batch, 3, side, side)
  if name in TORCH_LOSSES:
    net, loss_fn = TORCH_LOSSES[name](config, images)
  else:
    net, loss_fn = _classifier_loss(name, images)
  optimizer = torch.optim.Adam(net.parameters(), 1e-4)

  def step() -> float:
    optimizer.zero_grad()
    loss = loss_fn()
    loss.backward()
    optimizer.step()
    return loss.item()
  return step
