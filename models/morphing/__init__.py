"""Paths through latent space rendered to sound, and their export as files and render specs."""
