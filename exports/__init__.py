"""streamcount exports: a trained checkpoint to an ONNX model the runtime can load.

``onnx.py`` exports with metadata and verifies against torch; ``quantize.py`` makes fp16 and
int8 variants. Everything is written atomically (temporary file, then rename).
"""
