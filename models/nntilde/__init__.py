"""nn~ models (RAVE and other TorchScript exports for Max and Pd): open them, and export ours (no Qt).

:mod:`models.nntilde.trust` remembers which TorchScript files the user agreed to run;
:mod:`models.nntilde.model` opens an nn~ model and wraps it as a :class:`~models.nets.base.LatentModel`
on a framed-audio representation, so the app's encode and decode paths use it unchanged;
:mod:`models.nntilde.export` writes one of our checkpoints as an audio-out nn~ model.
"""
