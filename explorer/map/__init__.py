"""The latent map: the scatter view and where its labels go."""
