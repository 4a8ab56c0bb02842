"""The PyTorch counterparts of the JAX networks and steps (need torch, a test/benchmark extra):
reference.py (torchvision-style ResNet/VGG for the weight-import checks), systems.py (the five
systems layer for layer), steps.py (their losses and train steps for tools.compare_torch)."""
