"""Export trained Keras models to verified, self-describing ONNX files (python -m export)."""
