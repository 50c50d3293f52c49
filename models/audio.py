"""Reading and writing sound files.

Everything the rest of the project handles is a 1-D ``float32`` array in [-1, 1] at a known
sample rate. Reading goes through libsndfile (``soundfile``: WAV, FLAC, OGG, AIFF, MP3) and
falls back to ``librosa``/audioread for what libsndfile cannot open; writing is WAV only, always
atomic.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import samplerate
import soundfile as sf
import soxr

from models.arrays import fit_length
from models.atomic import atomic_open
from models.errors import AudioLoadError, ConfigError

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc", ".mp3"})

#: Formats libsndfile itself defines; no fallback decoder is tried for them.
_LIBSNDFILE_NATIVE = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".aifc"})

#: Files shorter than this (after resampling) cannot be analysed by any representation.
MIN_SAMPLES = 64

WAV_SUBTYPES = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float32": "FLOAT"}


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    """What the file header says, before any decoding."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def is_audio_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Header information; raises AudioLoadError when the file is not readable audio."""
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(os.fsencode(path))  # bytes: names that are not UTF-8 open too
    except (RuntimeError, sf.LibsndfileError, TypeError) as exc:
        raise AudioLoadError(f"{path.name}: not a readable audio file ({_short(exc)})") from exc
    _check_truncated(path, info.extra_info)
    return AudioInfo(
        path=str(path),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        format=str(info.format),
        subtype=str(info.subtype),
    )


def load_audio(
    path: str | os.PathLike,
    *,
    sr: int | None,
    max_duration: float | None = None,
    min_samples: int = MIN_SAMPLES,
) -> np.ndarray:
    """Load a file as mono float32 at sample rate ``sr``.

    Parameters
    ----------
    path : path of a WAV, FLAC, OGG, AIFF or MP3 file.
    sr : target sample rate; ``None`` keeps the file's own.
    max_duration : read at most this many seconds from the start (a 10-minute file in a
        folder of one-shots should not cost 10 minutes of memory).
    min_samples : shorter results are refused.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioLoadError
        Empty, truncated or non-audio file; non-finite samples; too short.
    """
    path = Path(path)
    y, file_sr = _read(path, max_duration)
    if y.ndim == 2:
        y = y.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise AudioLoadError(f"{path.name}: contains NaN or infinite samples")
    if sr is not None and sr != file_sr:
        if len(y) < 2:
            raise AudioLoadError(f"{path.name}: too short ({len(y)} samples)")
        y = resample(y, file_sr, sr)
    if len(y) < min_samples:
        raise AudioLoadError(
            f"{path.name}: too short ({len(y)} samples, at least {min_samples} needed)"
        )
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 1.0:
        # Float files may exceed full scale; keep the shape of the sound, not its clipping.
        y = y / peak
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """The project's one resampler: mono float32 from ``sr`` to ``target_sr``.

    The SoX resampler (``soxr``, "HQ": what librosa's ``res_type="soxr_hq"`` runs) for loading,
    playback and exports alike. It is deterministic, so a render spec resampled again gives the
    same samples, and the output has ``ceil(len(y) * target_sr / sr)`` samples (librosa's length).

    y : np.ndarray [shape=(n_samples,)]
    returns : np.ndarray [shape=(ceil(n_samples * target_sr / sr),), dtype=float32]

    Raises
    ------
    ConfigError
        A rate that is not a positive whole number of Hz.
    """
    sr, target_sr = int(sr), int(target_sr)
    if sr <= 0 or target_sr <= 0:
        raise ConfigError(f"sample rates must be > 0 Hz, got {sr} and {target_sr}")
    y = np.asarray(y, dtype=np.float32)
    if sr == target_sr:
        return y
    n = int(np.ceil(len(y) * target_sr / sr))
    out = soxr.resample(y, sr, target_sr, quality="HQ")
    return np.ascontiguousarray(fit_length(out, n), dtype=np.float32)


class StreamResampler:
    """:func:`resample` for a stream fed block by block (the real-time player's model -> device rate).

    libsamplerate's "sinc_medium" converter (``samplerate``): about 130 dB SNR here, output in
    step with its input (384 samples per 128 at 16 -> 48 kHz) and a fixed delay of under 3 ms at
    16 kHz in (1 ms at 44.1 kHz). soxr streams hold more back: its variable-rate mode a steady
    15 ms at 16 -> 48 kHz (80 dB), its fixed-rate mode up to 37 ms in bursts, which a player
    promising "audible within 30 ms" cannot spend (``bench/bench_scrub.py`` measures it). Offline
    work keeps soxr (:func:`resample`): there delay costs nothing and its filter is the sharper.
    The same rate passes blocks through untouched.

    ``process(y)`` : np.ndarray [shape=(n,)] -> [shape=(about n * target_sr / sr,), dtype=float32]
    """

    def __init__(self, sr: int, target_sr: int) -> None:
        self.sr, self.target_sr = int(sr), int(target_sr)
        if self.sr <= 0 or self.target_sr <= 0:
            raise ConfigError(f"sample rates must be > 0 Hz, got {sr} and {target_sr}")
        self.ratio = self.target_sr / self.sr
        self._stream = (None if self.sr == self.target_sr
                        else samplerate.Resampler("sinc_medium", channels=1))
        self._n_in = 0
        self._n_out = 0

    def process(self, y: np.ndarray, *, last: bool = False) -> np.ndarray:
        """The next output samples for the next input block (``last``: flush the filter's tail,
        so the whole stream has ``ceil(n_in * target_sr / sr)`` samples, as :func:`resample` gives)."""
        y = np.ascontiguousarray(y, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return y
        out = np.asarray(self._stream.process(y, self.ratio), dtype=np.float32).reshape(-1)
        self._n_in += len(y)
        self._n_out += len(out)
        if not last:
            return out
        # libsamplerate hands its held-back tail out only for more input: push silence through
        want = int(math.ceil(self._n_in * self.ratio)) - self._n_out
        parts, pad = [out], np.zeros(max(64, int(self.sr * 0.005)), np.float32)
        while want > 0:
            more = np.asarray(self._stream.process(pad, self.ratio), dtype=np.float32).reshape(-1)[:want]
            parts.append(more)
            want -= len(more)
        self._n_out = int(math.ceil(self._n_in * self.ratio))
        return np.concatenate(parts)


def _read(path: Path, max_duration: float | None) -> tuple[np.ndarray, int]:
    _check_file(path)
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            _check_truncated(path, f.extra_info)
            file_sr = int(f.samplerate)
            frames = -1 if max_duration is None else int(round(max_duration * file_sr))
            y = f.read(frames=frames, dtype="float32", always_2d=False)
        if y.size == 0:
            raise AudioLoadError(f"{path.name}: holds no samples")
        return y, file_sr
    except AudioLoadError:
        raise
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as sf_exc:
        error = sf_exc
    if path.suffix.lower() in _LIBSNDFILE_NATIVE:
        # libsndfile is the reference decoder for these; another one would only guess.
        raise AudioLoadError(f"{path.name}: not a readable audio file ({_short(error)})") from error
    # libsndfile could not read it: try audioread through librosa (exotic MP3s, etc.).
    try:
        import librosa

        with warnings.catch_warnings():
            # librosa warns that it falls back to audioread; we report the outcome ourselves.
            warnings.simplefilter("ignore")
            y, file_sr = librosa.load(str(path), sr=None, mono=False, duration=max_duration)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not readable"
        raise AudioLoadError(f"{path.name}: not a readable audio file ({_short(error)})") from exc
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.T
    if y.size == 0:
        raise AudioLoadError(f"{path.name}: holds no samples")
    return y, int(file_sr)


# libsndfile's log line for a WAV/AIFF data chunk that the file does not fully hold.
_SHORT_CHUNK = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers (espeak-ng --stdout, sox -) leave a placeholder size; that is not damage.
_STREAMING_SIZES = (0, 0xFFFFFFFF)


def _check_truncated(path: Path, extra_info: str) -> None:
    """Refuse a file whose header promises more audio than the file holds.

    libsndfile would read the part that is there; a cut-off recording is still damaged
    data, and a dataset should list it rather than learn from it.
    """
    match = _SHORT_CHUNK.search(extra_info or "")
    if match is None:
        return
    declared, actual = int(match[1]), int(match[2])
    if declared in _STREAMING_SIZES or declared >= 0x7FFF0000 or actual >= declared:
        return
    raise AudioLoadError(
        f"{path.name}: truncated (header promises {declared} bytes of audio, file holds {actual})"
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioLoadError(f"{path}: no such file")
    if not path.is_file():
        raise AudioLoadError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioLoadError(f"{path.name}: empty file")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def save_wav(
    path: str | os.PathLike,
    y: np.ndarray,
    *,
    sr: int,
    subtype: str = "pcm16",
) -> Path:
    """Write ``y`` (mono ``(n,)`` or multichannel ``(n, channels)``) as a WAV file, atomically.

    ``subtype`` is ``"pcm16"``, ``"pcm24"`` or ``"float32"``. PCM output is clipped to [-1, 1];
    non-finite samples are refused rather than written as noise.
    """
    if subtype not in WAV_SUBTYPES:
        raise ConfigError(f"subtype must be one of {sorted(WAV_SUBTYPES)}, got {subtype!r}")
    if sr <= 0:
        raise ConfigError(f"sample rate must be positive, got {sr}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim not in (1, 2):
        raise ConfigError(f"audio must be 1-D or 2-D, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ConfigError("audio contains NaN or infinite samples; refusing to write it")
    if subtype != "float32":
        y = np.clip(y, -1.0, 1.0)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        sf.write(f, y, sr, subtype=WAV_SUBTYPES[subtype], format="WAV")
    return path
