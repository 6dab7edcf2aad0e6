"""streamcount training: dataset readers, density maps, models, trainer and evaluation (torch).

Modules here import torch lazily so that ``streamcount --help`` works without it.
"""
