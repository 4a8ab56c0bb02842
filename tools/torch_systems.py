"""PyTorch counterparts of the pose machine, the landmark-attention network, the SisterNetwork and
the curriculum transfer's multi-task network, layer for layer (same convolutions, widths, kernels,
pools and heads as fashion_jax.models.fpm, .landmark_attention, .sister and .mtct), for
tools/compare_torch's side-by-side step times. They are built from the same config fields; they
are timing references, not trained or converted models.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from fashion_jax.models import nin
from tools import torch_reference


def conv_stack(in_channels, widths, kernels, pool_after=(), relu_last=True) -> nn.Sequential:
  """fpm.ConvStack: 'same' convolutions with ReLU, a 3x3 stride-2 max pool after flagged ones."""
  layers, pools = [], tuple(pool_after) + (False,) * (len(widths) - len(pool_after))
  for i, (width, kernel, pool) in enumerate(zip(widths, kernels, pools, strict=True)):
    layers.append(nn.Conv2d(in_channels, width, kernel, padding=kernel // 2))
    if relu_last or i < len(widths) - 1:
      layers.append(nn.ReLU())
    if pool:
      layers.append(nn.MaxPool2d(3, 2, padding=1))
    in_channels = width
  return nn.Sequential(*layers)


class PoseMachine(nn.Module):
  """fashion_jax.models.fpm.FashionPoseMachine: returns belief maps [T, B, L+1, H/8, W/8]."""

  def __init__(self, model_cfg, num_keypoints=24):
    super().__init__()
    m, channels = model_cfg, num_keypoints + 1
    widths, kernels = tuple(m.feature_widths), tuple(m.feature_kernels)
    pools = (True,) * (len(widths) - 1)
    self.stage1_features = conv_stack(3, widths, kernels, pools)
    self.stage1_head = conv_stack(widths[-1], (*m.stage1_widths, channels),
                                  (*m.stage1_kernels, 1), relu_last=False)
    self.shared = conv_stack(3, widths[:-1], kernels[:-1], pools)
    refine_widths = (m.refine_width,) * (m.refine_depth + 1) + (channels,)
    refine_kernels = (m.refine_kernel,) * m.refine_depth + (1, 1)
    self.own = nn.ModuleList(conv_stack(widths[-2], widths[-1:], kernels[-1:])
                             for _ in range(m.num_stages - 1))
    self.refine = nn.ModuleList(conv_stack(widths[-1] + channels, refine_widths, refine_kernels,
                                           relu_last=False) for _ in range(m.num_stages - 1))

  def forward(self, image):
    belief = self.stage1_head(self.stage1_features(image))
    stages = [belief]
    shared = self.shared(image) if self.refine else None
    for own, refine in zip(self.own, self.refine, strict=True):
      belief = refine(torch.cat([own(shared), belief], dim=1))
      stages.append(belief)
    return torch.stack(stages)


def upsample_2x(in_channels, out_channels) -> nn.ConvTranspose2d:
  return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)


class LandmarkAttention(nn.Module):
  """fashion_jax.models.landmark_attention.LandmarkAttentionNet on VGG-16 (no BN): returns
  (heatmaps [B, 8, H, W], category logits, attribute logits)."""

  def __init__(self, model_cfg, num_categories, num_attributes, num_landmarks=8):
    super().__init__()
    m = model_cfg
    vgg = torch_reference.VGG(batch_norm=False)
    split = vgg.tap_names.index("conv4_3") + 1
    self.to_conv4_3, self.after_conv4_3 = vgg.features[:split], vgg.features[split:]
    self.avgpool, self.fc67 = vgg.avgpool, vgg.classifier[:6]
    widths = tuple(m.landmark_widths)
    layers, width = [nn.Conv2d(512, widths[0], 1), nn.ReLU()], widths[0]
    for out in widths[1:]:
      layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), upsample_2x(width, out),
                 nn.ReLU()]
      width = out
    self.landmark_branch = nn.Sequential(*layers, nn.Conv2d(width, num_landmarks, 1))
    s1, s2 = m.squeeze_widths
    self.attention = nn.Sequential(
        nn.Conv2d(513, 32, 1), nn.ReLU(), nn.Conv2d(32, s1, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2), nn.Conv2d(s1, s2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        upsample_2x(s2, m.expand_width), nn.ReLU(), upsample_2x(m.expand_width, 512),
        nn.Sigmoid())
    self.use_attention = bool(m.attention)
    self.category = nn.Linear(m.fc_width, num_categories)
    self.attributes = nn.Linear(m.fc_width, num_attributes)

  def forward(self, image):
    features = self.to_conv4_3(image)
    heatmaps = self.landmark_branch(features)
    if self.use_attention:
      info = functional.interpolate(heatmaps, size=features.shape[-2:], mode="bilinear",
                                    antialias=True).amax(dim=1, keepdim=True)
      features = (0.5 + self.attention(torch.cat([features, info], dim=1))) * features
    pooled = self.fc67(torch.flatten(self.avgpool(self.after_conv4_3(features)), 1))
    return heatmaps, self.category(pooled), self.attributes(pooled)


class SisterNetA(nn.Module):
  """fashion_jax.models.sister.SisterNet, variant sister_a with ResNet-50 streams: each stream's
  stage-4 features max-pooled over space, FC + ReLU each, summed, then the label outputs."""

  def __init__(self, model_cfg, num_outputs):
    super().__init__()
    if model_cfg.variant != "sister_a" or tuple(model_cfg.stage_sizes) != (3, 4, 6, 3):
      raise ValueError("the PyTorch SisterNetwork is Sister-A on ResNet-50 streams only")
    self.streams = nn.ModuleList(torch_reference.build("resnet50") for _ in range(2))
    for stream in self.streams:
      del stream.fc  # the streams end at stage 4, as in the JAX model
    self.fcs = nn.ModuleList(nn.Linear(2048, model_cfg.fc_width) for _ in range(2))
    self.output = nn.Linear(model_cfg.fc_width, num_outputs)

  @staticmethod
  def _stage4(stream, x):
    x = stream.maxpool(stream.relu(stream.bn1(stream.conv1(x))))
    return stream.layer4(stream.layer3(stream.layer2(stream.layer1(x))))

  def forward(self, image, segmented_image):
    fused = sum(functional.relu(fc(self._stage4(stream, x).amax(dim=(2, 3))))
                for stream, fc, x in zip(self.streams, self.fcs, (image, segmented_image),
                                         strict=True))
    return self.output(fused)


class MultiTaskNetwork(nn.Module):
  """fashion_jax.models.mtct.MultiTaskNetwork without batch norm (the paper config): the NIN
  trunk of fashion_jax.models.nin, flattened, then an FC-FC-FC branch per attribute group in
  each of the shop and street sets; returns the `branches` set's logits per group."""

  def __init__(self, model_cfg, group_sizes, image_size=224):
    super().__init__()
    if model_cfg.batch_norm or model_cfg.width_scale != 1:
      raise ValueError("the PyTorch multi-task network is the paper config's NIN only")
    trunk, channels = [], 3
    for _, convs in nin.MTN_TABLE:
      trunk += [] if convs else [nn.MaxPool2d(3, 2, padding=1)]
      for _, kernel, width, stride in convs:
        trunk += [nn.Conv2d(channels, width, kernel, stride, padding=kernel // 2), nn.ReLU()]
        channels = width
    self.trunk = nn.Sequential(*trunk)
    self.branches = model_cfg.branches
    side = -(-image_size // 32)  # three stride-2 convolutions and two stride-2 pools
    width, features = model_cfg.fc_width, channels * side * side
    self.sets = nn.ModuleDict({name: nn.ModuleList(nn.Sequential(
        nn.Linear(features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, size)) for size in group_sizes) for name in ("shop", "street")})

  def forward(self, image):
    features = torch.flatten(self.trunk(image), 1)
    return [branch(features) for branch in self.sets[self.branches]]
