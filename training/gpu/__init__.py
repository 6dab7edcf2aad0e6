"""Training on a borrowed GPU in one short, prepared run.

``pack`` makes a compact file of the prepared training data (JPEG images and points, plus the
ImageNet encoder weights in fp16) small enough to travel with the working tree; ``run`` unpacks
it on the GPU machine, trains every bundled model's recipe in a GPU variant within a time
budget, exports the models to ONNX and writes a summary. The same ``run`` works on a CPU with a
tiny budget, which is how CI proves it. See docs/gpu-runbook.md.
"""
