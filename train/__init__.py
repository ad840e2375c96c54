"""Training for edge-infer: data, model builders, augmentation, the loop and its plots.

Run from the repository as `python -m train ...` (needs the `train` extra).
"""
