"""PyTorch references in the torchvision layout, written with torch.nn only (torchvision from PyPI
does not import beside this project's torch). Module and state-dict names are torchvision's:
`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, `fc`; `features.0`, `classifier.6`.

Every module returns its output and a dict of taps named like the Flax stages, so a test can
compare the middle of the networks as well as the logits.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU()
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    # stride on the 3x3 (v1.5); dilated stages pad by their dilation, as torchvision's conv3x3
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU()
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):

  def __init__(self, block, layers, num_classes=1000,
               replace_stride_with_dilation=(False, False, False)):
    super().__init__()
    self.inplanes, self.dilation = 64, 1
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU()
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make_layer(block, 64, layers[0])
    dilate = replace_stride_with_dilation
    self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
    self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
    self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2])
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
    downsample, previous = None, self.dilation
    if dilate:  # torchvision: give up the stride, dilate by it from the second block on
      self.dilation *= stride
      stride = 1
    if stride != 1 or self.inplanes != planes * block.expansion:
      downsample = nn.Sequential(
          nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
          nn.BatchNorm2d(planes * block.expansion))
    extra = {} if block is BasicBlock else {"dilation": previous}
    layers = [block(self.inplanes, planes, stride, downsample, **extra)]
    self.inplanes = planes * block.expansion
    extra = {} if block is BasicBlock else {"dilation": self.dilation}
    layers += [block(self.inplanes, planes, **extra) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def forward(self, x):
    taps = {"stem": self.maxpool(self.relu(self.bn1(self.conv1(x))))}
    y = taps["stem"]
    for i in range(1, 5):
      y = taps[f"stage{i}"] = getattr(self, f"layer{i}")(y)
    taps["pooled"] = torch.flatten(self.avgpool(y), 1)
    taps["logits"] = self.fc(taps["pooled"])
    return taps


RESNET_LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)), "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


class VGG(nn.Module):

  def __init__(self, batch_norm: bool, num_classes=1000):
    super().__init__()
    layers, names, channels = [], [], 3
    block, conv = 1, 1
    for v in VGG16_CONFIG:
      if v == "M":
        layers.append(nn.MaxPool2d(2, 2))
        names.append(f"pool{block}")
        block, conv = block + 1, 1
        continue
      layers.append(nn.Conv2d(channels, v, 3, padding=1))
      names.append(None)
      if batch_norm:
        layers.append(nn.BatchNorm2d(v))
        names.append(None)
      layers.append(nn.ReLU())
      names.append(f"conv{block}_{conv}")  # the tap is the post-ReLU map
      channels, conv = v, conv + 1
    self.features = nn.Sequential(*layers)
    self.tap_names = names
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, num_classes))

  def forward(self, x):
    taps = {}
    for layer, name in zip(self.features, self.tap_names, strict=True):
      x = layer(x)
      if name:
        taps[name] = x
    taps["avgpool"] = x = self.avgpool(x)
    x = torch.flatten(x, 1)
    taps["fc6"] = x = self.classifier[:3](x)
    taps["fc7"] = x = self.classifier[3:6](x)
    taps["logits"] = self.classifier[6](x)
    return taps


class FCNHead(nn.Sequential):
  """torchvision.models.segmentation.fcn.FCNHead: 3x3 conv, BN, ReLU, dropout, 1x1 conv."""

  def __init__(self, in_channels, channels):
    inter = in_channels // 4
    super().__init__(nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
                     nn.BatchNorm2d(inter), nn.ReLU(), nn.Dropout(0.1),
                     nn.Conv2d(inter, channels, 1))


class FCN(nn.Module):
  """torchvision's fcn_resnet50/101: a ResNet dilated in layer3 and layer4 (stride 8), the FCN
  head on layer4, bilinear upsampling to the input; the auxiliary head on layer3 (used only in
  training) is part of the state dict."""

  def __init__(self, layers, num_classes=21):
    super().__init__()
    self.backbone = ResNet(Bottleneck, layers, replace_stride_with_dilation=(False, True, True))
    del self.backbone.fc, self.backbone.avgpool
    self.classifier = FCNHead(2048, num_classes)
    self.aux_classifier = FCNHead(1024, num_classes)

  def forward(self, x):
    b = self.backbone
    y = b.maxpool(b.relu(b.bn1(b.conv1(x))))
    taps = {}
    for i in range(1, 5):
      y = taps[f"stage{i}"] = getattr(b, f"layer{i}")(y)
    logits = nn.functional.interpolate(self.classifier(y), size=x.shape[-2:], mode="bilinear",
                                       align_corners=False)
    return {"stage4": taps["stage4"], "logits": logits}


FCN_LAYOUTS = {"fcn_resnet50": (3, 4, 6, 3), "fcn_resnet101": (3, 4, 23, 3)}


def build(name: str, seed: int = 0) -> nn.Module:
  """A randomly initialised reference in eval mode, BN statistics and affines randomised too.

  torch's fresh BN (mean 0, var 1, scale 1, shift 0) is the identity in eval mode and would let a
  swapped mean/var or scale/shift pass; random values make every BN tensor matter.
  """
  torch.manual_seed(seed)
  if name in RESNET_LAYOUTS:
    model = ResNet(*RESNET_LAYOUTS[name])
  elif name in FCN_LAYOUTS:
    model = FCN(FCN_LAYOUTS[name])
  elif name in ("vgg16", "vgg16_bn"):
    model = VGG(batch_norm=name == "vgg16_bn")
  else:
    raise ValueError(f"no torch reference for {name!r}")
  generator = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.Conv2d):  # torchvision's init, so activations keep their scale
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu",
                                generator=generator)
      elif isinstance(module, nn.BatchNorm2d):
        n = module.num_features
        module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
        module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
        module.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=generator))
        module.bias.copy_(0.1 * torch.randn(n, generator=generator))
  return model.eval()


def nhwc(t: torch.Tensor):
  """torch NCHW (or [B, F]) tensor -> numpy NHWC (or [B, F])."""
  a = t.detach().numpy()
  return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
