"""Reusable networks: ResNet, VGG, stacked hourglass, NIN, FCN, shared layers and backbones, and
the import of converted pretrained weights. The papers' systems that use them live in
`fashion_jax.systems`."""
