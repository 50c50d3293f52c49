"""Spoken digits through espeak-ng, written in the Free Spoken Digit Dataset layout.

Every combination of voice x variant x speed x pitch is one "speaker", named
``{voice}-{variant}-s{speed}-p{pitch}`` (underscores removed: FSDD uses them as separators),
e.g. ``0_en-us-m3-s150-p50_0.wav``. espeak-ng speaks the numeral, so a non-English voice says
the digit in its own language. Its 22.05 kHz output is resampled to 8 kHz (soxr) and trimmed
of leading and trailing silence (``librosa.effects.trim``, ``top_db``).

espeak-ng is deterministic: a second repetition of the same speaker would be a copy. With
``repetitions > 1``, index 0 is the exact voice and later indices jitter speed (+-5%) and
pitch (+-5) with a seeded generator, so a build is still reproducible.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from models.atomic import atomic_dir
from models.audio import resample, save_wav
from models.datasets.base import BuildCancelled, BuildReport, check_output_folder
from models.datasets.fsdd import FSDD_SAMPLE_RATE
from models.errors import ConfigError, DatasetError

DEFAULT_VOICES = ("en-us",)
#: espeak-ng voice variants (files under espeak-ng-data/voices/!v): male 3, female 2.
DEFAULT_VARIANTS = ("m3", "f2")
DEFAULT_SPEEDS = (150,)
DEFAULT_PITCHES = (50,)


def speaker_name(voice: str, variant: str | None, speed: int, pitch: int) -> str:
    parts = [voice] + ([variant] if variant else []) + [f"s{speed}", f"p{pitch}"]
    return "-".join(parts).replace("_", "").replace("/", "")


def speak(
    text: str,
    *,
    voice: str,
    variant: str | None = None,
    speed: int = 150,
    pitch: int = 50,
    espeak: str = "espeak-ng",
) -> tuple[np.ndarray, int]:
    """Run espeak-ng once; returns (float32 mono samples, sample rate)."""
    name = f"{voice}+{variant}" if variant else voice
    cmd = [espeak, "-v", name, "-s", str(int(speed)), "-p", str(int(pitch)), "--stdout", text]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not run {espeak}: {exc}") from exc
    if proc.returncode != 0 or len(proc.stdout) <= 44:
        msg = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise ConfigError(f"espeak-ng failed for voice {name!r}: {msg}")
    # espeak-ng streams its WAV with a placeholder data size; libsndfile reads it anyway.
    y, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=False)
    if y.ndim == 2:
        y = y.mean(axis=1)
    return y, int(rate)


def build_digits(
    out: str | os.PathLike,
    *,
    voices: Sequence[str] = DEFAULT_VOICES,
    variants: Sequence[str | None] = DEFAULT_VARIANTS,
    speeds: Sequence[int] = DEFAULT_SPEEDS,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    digits: Sequence[int] = tuple(range(10)),
    repetitions: int = 1,
    sr: int = FSDD_SAMPLE_RATE,
    top_db: float = 40.0,
    espeak: str = "espeak-ng",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BuildReport:
    """Speak each digit with each speaker and write ``{digit}_{speaker}_{index}.wav`` at ``out``.

    Parameters
    ----------
    voices : espeak-ng voice names (``espeak-ng --voices``), e.g. ``"en-us"``, ``"en-gb"``.
    variants : voice variants (``m1``-``m7``, ``f1``-``f5``, ``klatt``...); ``None`` for none.
    speeds : words per minute (espeak ``-s``; 80-450).
    pitches : espeak ``-p`` (0-99).
    repetitions : recordings per digit and speaker (see the module notes on jitter).
    progress, should_stop : called once per recording; see :func:`build_notes`.

    Raises
    ------
    ConfigError
        espeak-ng missing, an unknown voice, bad ranges, or an existing ``out``.
    """
    exe = shutil.which(espeak)
    if exe is None:
        raise ConfigError(f"{espeak} not found; install it with: apt install espeak-ng")
    digits = [int(d) for d in digits]
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise ConfigError(f"digits must be in 0-9, got {digits}")
    if repetitions < 1:
        raise ConfigError(f"repetitions must be at least 1, got {repetitions}")
    if any(not 0 <= p <= 99 for p in pitches) or any(not 10 <= s <= 1000 for s in speeds):
        raise ConfigError("pitches must be in 0-99 and speeds in 10-1000 words per minute")
    speakers = [(v, var, s, p) for v in voices for var in variants for s in speeds for p in pitches]
    if not speakers:
        raise ConfigError("voices, variants, speeds and pitches must each have at least one value")
    out = Path(out)
    check_output_folder(out, overwrite)

    import librosa  # lazily: its import costs about a second

    jobs = [(spk, d, k) for spk in speakers for d in digits for k in range(repetitions)]
    report = BuildReport(out=out)
    with atomic_dir(out) as tmp:
        for done, ((voice, variant, speed, pitch), digit, index) in enumerate(jobs):
            if should_stop is not None and should_stop():
                raise BuildCancelled("digit build cancelled")
            speaker = speaker_name(voice, variant, speed, pitch)
            name = f"{digit}_{speaker}_{index}.wav"
            s, p = _jitter(speaker, digit, index, speed, pitch)
            y, rate = speak(str(digit), voice=voice, variant=variant, speed=s, pitch=p, espeak=exe)
            y = resample(y, rate, sr)
            y, _ = librosa.effects.trim(y, top_db=top_db, frame_length=512, hop_length=128)
            if len(y) < 64 or float(np.max(np.abs(y))) < 1e-4:
                report.skipped.append((name, "espeak-ng produced silence"))
            else:
                save_wav(tmp / name, y, sr=sr, subtype="pcm16")
                report.written += 1
            if progress is not None:
                progress(done + 1, len(jobs))
        if report.written == 0:
            raise DatasetError("espeak-ng produced no usable recording")
    return report


def _jitter(speaker: str, digit: int, index: int, speed: int, pitch: int) -> tuple[int, int]:
    if index == 0:
        return speed, pitch
    rng = np.random.default_rng([zlib.crc32(speaker.encode()), digit, index])
    s = int(round(speed * (1.0 + rng.uniform(-0.05, 0.05))))
    p = int(np.clip(pitch + rng.integers(-5, 6), 0, 99))
    return s, p
