"""Encoders: backbones that turn an image into features at several strides.

An encoder is an ``nn.Module`` whose ``forward`` returns a list of feature maps, finest first,
and whose ``out_channels`` and ``strides`` describe them (the segmentation_models_pytorch
split: a decoder only needs those two tuples).
"""
