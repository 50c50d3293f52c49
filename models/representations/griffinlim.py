"""Fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013), batched in torch.

Written here rather than taken from torchaudio because torchaudio is not a dependency of the
project, and because the STFT must follow librosa's convention exactly (see ``stft.py``), which
``torch.stft`` does when given librosa's window array and constant padding.
"""

from __future__ import annotations

import numpy as np
import torch

from models.errors import ConfigError
from models.representations.stft import StftParams

_EPS = 1e-12


class TorchStft:
    """``torch.stft`` / ``torch.istft`` pair bound to one :class:`StftParams` and device."""

    def __init__(self, params: StftParams, *, device: str | torch.device = "cpu") -> None:
        self.params = params
        self.device = torch.device(device)
        self.window = torch.as_tensor(params.window_array(), dtype=torch.float32, device=self.device)
        self._envelopes: dict[int, torch.Tensor] = {}

    def stft(self, y: torch.Tensor) -> torch.Tensor:
        """[shape=(batch, n_samples)] -> complex [shape=(batch, n_bins, n_frames)]."""
        p = self.params
        return torch.stft(
            y,
            n_fft=p.n_fft,
            hop_length=p.hop_length,
            win_length=p.n_fft,
            window=self.window,
            center=p.center,
            pad_mode="constant",
            return_complex=True,
        )

    def istft(self, S: torch.Tensor, length: int) -> torch.Tensor:
        """complex [shape=(batch, n_bins, n_frames)] -> [shape=(batch, length)].

        ``torch.istft``'s own steps, bit for bit (tests/test_morph_render_speed.py), in half its
        time when the hop divides the FFT size: the window envelope is computed once per frame
        count rather than at every call (Griffin-Lim calls this once per iteration), and the
        overlap-add adds the ``n_fft / hop`` overlapping frames of each hop-long block in frame
        order, as ``unfold_backward`` does, but as ``n_fft / hop`` strided additions.
        """
        p = self.params
        if p.n_fft % p.hop_length == 0 and S.dim() == 3:
            return self._istft_blocks(S, int(length))
        return torch.istft(
            S,
            n_fft=p.n_fft,
            hop_length=p.hop_length,
            win_length=p.n_fft,
            window=self.window,
            center=p.center,
            length=length,
        )

    def _envelope(self, n_frames: int) -> torch.Tensor | None:
        """Sum of squared windows over the output [shape=(n_fft + hop * (n_frames - 1),)], or None where it
        nearly vanishes (torch.istft then raises its own error)."""
        env = self._envelopes.get(n_frames)
        if env is None:
            p = self.params
            w2 = self.window.pow(2).expand(1, n_frames, p.n_fft)
            env = torch.ops.aten.unfold_backward(w2, [1, p.n_fft + p.hop_length * (n_frames - 1)], 1, p.n_fft,
                                                 p.hop_length)[0]
            self._envelopes[n_frames] = env
        return env

    def _istft_blocks(self, S: torch.Tensor, length: int) -> torch.Tensor:
        p = self.params
        n_fft, hop = p.n_fft, p.hop_length
        batch, _, n_frames = S.shape
        frames = torch.fft.irfft(S.transpose(1, 2), n=n_fft) * self.window.view(1, 1, n_fft)
        r = n_fft // hop
        blocks = torch.zeros(batch, n_frames + r - 1, hop, dtype=frames.dtype, device=frames.device)
        for q in range(r - 1, -1, -1):  # block j gets frames j-r+1 ... j, oldest first (unfold_backward's order)
            blocks[:, q: q + n_frames] += frames[:, :, q * hop: (q + 1) * hop]
        y = blocks.reshape(batch, -1)
        start = n_fft // 2 if p.center else 0
        end = start + length
        env = self._envelope(n_frames)[start:end]
        if bool(env.abs().min() < 1e-11):
            return torch.istft(S, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=self.window,
                               center=p.center, length=length)
        y = y[:, start:end] / env
        return torch.nn.functional.pad(y, (0, end - start - y.shape[-1])) if y.shape[-1] < length else y


def griffin_lim(
    mag: np.ndarray,
    *,
    params: StftParams,
    n_iter: int = 32,
    momentum: float = 0.99,
    init: np.ndarray | None = None,
    length: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Waveform whose STFT magnitude approaches ``mag``, by fast Griffin-Lim.

    Each iteration projects onto consistent spectrograms (iSTFT then STFT), extrapolates with
    momentum, and imposes the target magnitude, in librosa's arrangement
    (``t_n = P(c_{n-1}) - momentum / (1 + momentum) * P(c_{n-2})``), so that for the same start
    it returns what ``librosa.griffinlim`` returns, for a batch at once and on any device.
    With momentum 0 this is the original Griffin-Lim; Perraudin et al. recommend 0.99.

    Parameters
    ----------
    mag : np.ndarray [shape=(n_bins, n_frames) or (batch, n_bins, n_frames)]
        Target magnitudes, in ``params``' geometry.
    params : StftParams
    n_iter : int
        Iterations (0 returns the inverse STFT of the initial estimate).
    momentum : float
        Extrapolation weight, in [0, 2).
    init : np.ndarray or None [shape like mag]
        Initial phase in radians (e.g. from PGHI); random (seeded) when None.
    length : int or None
        Output samples; ``params.natural_length(n_frames)`` when None.
    seed : int
        Seed of the random initial phase.
    device : str or torch.device
        Where to run; batches of clips on a GPU are the fast case.

    Returns
    -------
    np.ndarray [shape=(n_samples,) or (batch, n_samples)], float32
    """
    if n_iter < 0:
        raise ConfigError(f"n_iter must be >= 0, got {n_iter}")
    if not 0.0 <= momentum < 2.0:
        raise ConfigError(f"momentum must be in [0, 2), got {momentum}")
    mag = np.asarray(mag, dtype=np.float32)
    single = mag.ndim == 2
    if single:
        mag = mag[None]
    if mag.ndim != 3 or mag.shape[1] != params.n_bins:
        raise ConfigError(f"expected magnitudes of shape (batch, {params.n_bins}, frames), got {mag.shape}")
    # Iterate at the natural length, whose STFT has exactly n_frames frames; cut at the end.
    inner = params.natural_length(mag.shape[-1])
    if length is None:
        length = inner

    ts = TorchStft(params, device=device)
    S = torch.as_tensor(mag, device=ts.device)
    if init is None:
        # numpy's legacy generator draws the same start as librosa.griffinlim(random_state=seed)
        # for a single clip, so the two can be compared seed for seed.
        start = 2 * np.pi * np.random.RandomState(seed).random_sample(mag.shape[1:] if single else mag.shape)
        phase = torch.as_tensor(start.reshape(S.shape), dtype=torch.float32, device=ts.device)
    else:
        init = np.asarray(init, dtype=np.float32)
        phase = torch.as_tensor(init[None] if single else init, device=ts.device)
    beta = momentum / (1.0 + momentum)
    with torch.no_grad():
        c = S * torch.polar(torch.ones_like(S), phase)
        prev = None
        for _ in range(n_iter):
            rebuilt = ts.stft(ts.istft(c, inner))
            # Extrapolate from the last consistent estimate (librosa's arrangement of
            # Perraudin's update; momentum starts at the second iteration), then impose the
            # target magnitude. A bin rebuilt as exactly 0 stays 0: it has no phase.
            t = rebuilt if prev is None else rebuilt - beta * prev
            prev = rebuilt
            c = t * (S / t.abs().clamp_min(_EPS))
        y = ts.istft(c, length).cpu().numpy().astype(np.float32)
    return y[0] if single else y
