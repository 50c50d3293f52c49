"""Imports every model module so that their classes and presets are registered."""

# frame models (Roche 2019, Colonel 2017)
from models.nets import dense, frame_vae, lstm, pca, presets_frames  # noqa: F401

# convolutional and waveform models (Natsiou; Lionello & Purwins)
from models.nets import lionello, natsiou, presets_conv  # noqa: F401
