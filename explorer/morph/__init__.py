"""Morph paths on the map: the panel, the drawing tool and the export dialog."""
