"""PyTorch counterparts of the pose machine, the landmark-attention network, the SisterNetwork, the
curriculum transfer's multi-task network and the two-stream network, layer for layer (same
convolutions, widths, kernels, pools and heads as fashion_jax.systems.fpm, .landmark_attention,
.sister, .mtct and .two_stream), for
tools/compare_torch's side-by-side step times. They are built from the same config fields; they
are timing references, not trained or converted models.
"""

from __future__ import annotations

import torch
from fashion_jax.models import nin
from fashion_jax.ops import boundary
from tools.torch import reference as torch_reference
from torch import nn
from torch.nn import functional


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
  """fashion_jax.systems.fpm.FashionPoseMachine: returns belief maps [T, B, L+1, H/8, W/8]."""

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
  """fashion_jax.systems.landmark_attention.LandmarkAttentionNet on VGG-16 (no BN): returns
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
  """fashion_jax.systems.sister.SisterNet, variant sister_a with ResNet-50 streams: each stream's
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
  """fashion_jax.systems.mtct.MultiTaskNetwork without batch norm (the paper config): the NIN
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


class HourglassResidual(nn.Module):
  """hourglass.Residual: pre-activation bottleneck, BN-ReLU-1x1-BN-ReLU-3x3-BN-ReLU-1x1;
  [B, in_channels, H, W] -> [B, features, H, W]."""

  def __init__(self, in_channels, features):
    super().__init__()
    half = features // 2
    self.body = nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, half, 1),
        nn.BatchNorm2d(half), nn.ReLU(), nn.Conv2d(half, half, 3, padding=1),
        nn.BatchNorm2d(half), nn.ReLU(), nn.Conv2d(half, features, 1))
    self.skip = (nn.Identity() if in_channels == features
                 else nn.Conv2d(in_channels, features, 1))

  def forward(self, x):
    return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
  """hourglass.Hourglass with one residual block per level (the two-stream network's):
  [B, features, H, W] -> the same, H and W divisible by 2**depth."""

  def __init__(self, depth, features):
    super().__init__()
    self.up, self.down, self.low = (HourglassResidual(features, features) for _ in range(3))
    self.inner = (Hourglass(depth - 1, features) if depth > 1
                  else HourglassResidual(features, features))

  def forward(self, x):
    low = self.low(self.inner(self.down(functional.max_pool2d(x, 2, 2))))
    return self.up(x) + functional.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
  """hourglass.StackedHourglass (one block per level): returns (heatmaps [S, B, L, H/4, W/4],
  the last stack's features [B, F, H/4, W/4])."""

  def __init__(self, num_heatmaps, num_stacks, depth, features, heatmap_init_std=None):
    super().__init__()
    self.stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), HourglassResidual(64, 128),
        nn.MaxPool2d(2, 2), HourglassResidual(128, 128), HourglassResidual(128, features))
    self.stacks = nn.ModuleList(nn.Sequential(
        Hourglass(depth, features), HourglassResidual(features, features),
        nn.Conv2d(features, features, 1), nn.BatchNorm2d(features), nn.ReLU())
        for _ in range(num_stacks))
    self.heads = nn.ModuleList(nn.Conv2d(features, num_heatmaps, 1) for _ in range(num_stacks))
    if heatmap_init_std is not None:  # near-empty maps at the start, as the JAX model's
      for head in self.heads:
        nn.init.normal_(head.weight, std=heatmap_init_std)
        nn.init.zeros_(head.bias)
    self.back = nn.ModuleList(nn.ModuleList((nn.Conv2d(features, features, 1),
                                             nn.Conv2d(num_heatmaps, features, 1)))
                              for _ in range(num_stacks - 1))

  def forward(self, image):
    x, maps = self.stem(image), []
    for s, (stack, head) in enumerate(zip(self.stacks, self.heads, strict=True)):
      features = stack(x)
      maps.append(head(features))
      if s < len(self.back):
        x = x + self.back[s][0](features) + self.back[s][1](maps[-1])
    return torch.stack(maps), features


def hull_fill(points, valid, size, margin):
  """[B, size + 2 margin, size + 2 margin] {0, 1}: the pixels inside the convex hull of the valid
  `points` [B, L, 2] (x, y) pixels — the hull's edges are the point pairs every other valid point
  lies left of (or on), a pixel is inside when it lies left of (or on) every edge. A float
  half-plane test, as a PyTorch user would write it on the device: the timing reference's
  rasteriser, not the exact Bresenham one of fashion_jax.ops.boundary (it differs on outline
  pixels, and on degenerate sets: collinear or coincident points fill a line or the whole map
  instead of a segment or a pixel)."""
  def cross(origin, direction_to, point):
    d, p = direction_to - origin, point - origin
    return d[..., 0] * p[..., 1] - d[..., 1] * p[..., 0]

  start = points[:, :, None, None, :]  # edge i -> j
  end = points[:, None, :, None, :]
  left = (cross(start, end, points[:, None, None, :, :]) >= 0) | ~valid[:, None, None, :]
  edge = left.all(-1) & valid[:, :, None] & valid[:, None, :]  # [B, L(i), L(j)]
  edge &= ~torch.eye(points.shape[1], dtype=torch.bool)
  axis = torch.arange(-margin, size + margin, dtype=points.dtype)
  grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(1, 1, 1, -1, 2)
  side = cross(start, end, grid)  # [B, L, L, P]
  inside = ((side >= 0) | ~edge[..., None]).flatten(1, 2).all(1)
  return inside.reshape(-1, size + 2 * margin, size + 2 * margin).float()


class TwoStream(nn.Module):
  """fashion_jax.systems.two_stream.TwoStreamNet on its paper defaults (ResNet-50, boundary after
  stage 1 as F * (1 + A), structure after stage 2): returns (heatmaps [S, B, 8, H/4, W/4],
  category logits, attribute logits). The boundary map is computed on the device from the last
  stack's decoded peaks, as the JAX step does, by `hull_fill` and a Gaussian blur (the peaks
  without the quarter-pixel shift: a sub-pixel difference that costs nothing either way)."""

  def __init__(self, model_cfg, num_categories, num_attributes, num_landmarks=8):
    super().__init__()
    m = model_cfg
    if (tuple(m.resnet_stage_sizes) != (3, 4, 6, 3) or m.resnet_width != 64
        or (m.boundary_at, m.boundary_formula, m.structure_at) != ("stage1", "residual",
                                                                   "stage2")
        or m.boundary_source != "predicted" or not m.get("structure_gradient", True)
        or m.dtype != "float32"):
      raise ValueError("the PyTorch two-stream network is the paper config's only (ResNet-50, "
                       "predicted boundary after stage1, residual, structure after stage2 with "
                       "its gradient, float32)")
    self.cfg = m
    self.landmark = StackedHourglass(num_landmarks, m.stacks, m.hourglass_depth,
                                     m.hourglass_features, m.get("heatmap_init_std", None))
    self.resnet = torch_reference.build("resnet50")
    del self.resnet.fc
    self.restore = nn.Sequential(nn.Conv2d(512 + m.hourglass_features, 512, 1),
                                 nn.BatchNorm2d(512), nn.ReLU())
    self.category = nn.Linear(2048, num_categories)
    self.attributes = nn.Linear(2048, num_attributes)
    radius = boundary.blur_radius(m.boundary_sigma)
    self.register_buffer("taps", torch.from_numpy(boundary.gaussian_kernel(m.boundary_sigma)))
    self.radius = radius

  def boundary(self, maps, size):
    """[B, 1, size, size] attention from the heatmaps [B, L, h, w] (no gradient)."""
    b, num, h, w = maps.shape
    scores, flat = maps.detach().flatten(2).max(-1)
    xy = torch.stack([flat % w, flat // w], -1).float()
    points = torch.floor((xy + 0.5) / torch.tensor([w, h]) * size)  # floor(x + 0.5), x = u s - 0.5
    valid = scores >= self.cfg.boundary_min_score
    valid &= valid.sum(-1, keepdim=True) >= self.cfg.boundary_min_points
    fill = hull_fill(points, valid, size, self.radius)[:, None]
    k = len(self.taps)
    fill = functional.conv2d(fill, self.taps.reshape(1, 1, k, 1))
    attention = functional.conv2d(fill, self.taps.reshape(1, 1, 1, k))
    return torch.where(valid.any(-1)[:, None, None, None], attention, torch.ones_like(attention))

  def forward(self, image):
    maps, features = self.landmark(image)
    size = self.cfg.classification_size
    resnet = self.resnet
    x = functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    x = resnet.layer1(resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x)))))
    x = x * (1 + self.boundary(maps[-1], x.shape[-1]))
    x = resnet.layer2(x)
    shared = functional.interpolate(features, size=x.shape[-2:], mode="bilinear", antialias=True)
    x = self.restore(torch.cat([x, shared], 1))
    pooled = resnet.layer4(resnet.layer3(x)).mean(dim=(2, 3))
    return maps, self.category(pooled), self.attributes(pooled)
