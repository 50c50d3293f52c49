"""Training, evaluation and dataset building, run as the ``latent-trainer`` command (no Qt)."""
