"""Running a model over files: engines (torch, ONNX Runtime), the batching pipeline, scan, ONNX export."""
