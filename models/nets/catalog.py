"""Imports every model module so that their classes and presets are registered."""
