"""One self-describing checkpoint file: format and migrations, load/save, latent statistics,
training state, and export to TorchScript/ONNX."""
