"""Render NSynth-style notes from a General MIDI SoundFont through FluidSynth.

Each note is 4 s at 16 kHz: the key is held for 3 s, then released and the tail rendered for
the last second, as in NSynth. Reverb and chorus are off so the note is the instrument alone.
FluidSynth renders stereo; channels are averaged to mono. ``synth.gain`` is 1.0 (FluidSynth's
0.2 default leaves single notes around -30 dBFS); levels are not normalised, so velocity stays
audible in the data. NSynth's ``qualities`` are human annotations we cannot derive: they are
written as ten zeros and an empty ``qualities_str``.

A (program, pitch) the SoundFont has no sample for renders silence; such notes are skipped and
reported in :attr:`BuildReport.skipped`. The whole folder is written in a temporary sibling and
renamed into place, so a failed or cancelled build leaves nothing half-written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.atomic import atomic_dir, atomic_write_json
from models.audio import save_wav
from models.datasets.base import BuildCancelled, BuildReport, check_output_folder
from models.datasets.gm import family_code, gm_family, source_code
from models.datasets.nsynth import NSYNTH_SAMPLE_RATE, QUALITIES
from models.errors import ConfigError, DatasetError

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: Small enough for CI (15 notes, well under a second): piano, nylon guitar, violin, trumpet, flute.
DEFAULT_PROGRAMS = (0, 24, 40, 56, 73)
DEFAULT_PITCHES = (48, 60, 72)
DEFAULT_VELOCITIES = (100,)
#: Peak below which a render counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4


def render_note(
    synth: object,
    sfid: int,
    *,
    program: int,
    pitch: int,
    velocity: int,
    sr: int = NSYNTH_SAMPLE_RATE,
    duration: float = 4.0,
    hold: float = 3.0,
    bank: int = 0,
) -> np.ndarray:
    """One note from a prepared ``fluidsynth.Synth``; returns ``float32 [shape=(duration*sr,)]``."""
    n_total = int(round(duration * sr))
    n_hold = min(int(round(hold * sr)), n_total)
    synth.program_select(0, sfid, bank, program)
    synth.noteon(0, pitch, velocity)
    held = synth.get_samples(n_hold)
    synth.noteoff(0, pitch)
    tail = synth.get_samples(n_total - n_hold) if n_total > n_hold else np.zeros(0, np.int16)
    synth.system_reset()  # no voice of this note leaks into the next one
    stereo = np.concatenate([held, tail]).astype(np.float32).reshape(-1, 2)
    return stereo.mean(axis=1) / 32768.0


def build_notes(
    out: str | os.PathLike,
    *,
    programs: Sequence[int] = DEFAULT_PROGRAMS,
    pitches: Sequence[int] = DEFAULT_PITCHES,
    velocities: Sequence[int] = DEFAULT_VELOCITIES,
    soundfont: str | os.PathLike = DEFAULT_SOUNDFONT,
    sr: int = NSYNTH_SAMPLE_RATE,
    duration: float = 4.0,
    hold: float = 3.0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BuildReport:
    """Render every (program, pitch, velocity) and write an NSynth folder at ``out``.

    Parameters
    ----------
    out : the folder to create (``examples.json`` + ``audio/``).
    programs : GM program numbers, 0-119 (see :mod:`models.datasets.gm` for the families).
    pitches : MIDI note numbers, 0-127 (NSynth uses 21-108).
    velocities : MIDI velocities, 1-127 (NSynth uses 25, 50, 75, 100, 127).
    soundfont : any ``.sf2`` file; Debian's ``fluid-soundfont-gm`` by default.
    overwrite : replace ``out`` if it exists and is not empty.
    progress, should_stop : called once per note; ``should_stop()`` returning true cancels
        the build (raises :class:`BuildCancelled`, nothing is written).

    Raises
    ------
    ConfigError
        A bad program, pitch or velocity, a missing SoundFont, or an existing ``out``.
    DatasetError
        Every note rendered silent.
    """
    programs, pitches, velocities = list(programs), list(pitches), list(velocities)
    families = {p: gm_family(p) for p in programs}
    _check_range("pitch", pitches, 0, 127)
    _check_range("velocity", velocities, 1, 127)
    if not (programs and pitches and velocities):
        raise ConfigError("programs, pitches and velocities must each have at least one value")
    if not 0 < hold <= duration:
        raise ConfigError(f"hold must be in (0, duration], got hold={hold}, duration={duration}")
    soundfont = Path(soundfont)
    if not soundfont.is_file():
        raise ConfigError(
            f"SoundFont {soundfont} not found; install fluid-soundfont-gm "
            "(apt install fluid-soundfont-gm) or pass --soundfont PATH to any .sf2 file"
        )
    out = Path(out)
    check_output_folder(out, overwrite)

    import fluidsynth  # imported here: the readers must work on machines without libfluidsynth

    synth = fluidsynth.Synth(
        gain=1.0, samplerate=float(sr), **{"synth.reverb.active": 0, "synth.chorus.active": 0}
    )
    report = BuildReport(out=out)
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid < 0:
            raise ConfigError(f"{soundfont}: FluidSynth could not load this SoundFont")
        jobs = [(p, k, v) for p in programs for k in pitches for v in velocities]
        with atomic_dir(out) as tmp:
            examples: dict[str, dict] = {}
            for done, (program, pitch, velocity) in enumerate(jobs):
                if should_stop is not None and should_stop():
                    raise BuildCancelled("note build cancelled")
                family, source = families[program]
                instrument_str = f"{family}_{source}_{program:03d}"
                note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                y = render_note(synth, sfid, program=program, pitch=pitch, velocity=velocity,
                                sr=sr, duration=duration, hold=hold)
                peak = float(np.max(np.abs(y)))
                if peak < SILENCE_PEAK:
                    report.skipped.append((note_str, "silent render (no sample for this program at this pitch)"))
                else:
                    save_wav(tmp / "audio" / f"{note_str}.wav", y, sr=sr, subtype="pcm16")
                    examples[note_str] = _entry(len(examples), note_str, instrument_str, program,
                                                pitch, velocity, sr, family, source)
                if progress is not None:
                    progress(done + 1, len(jobs))
            if not examples:
                raise DatasetError("every note rendered silent; nothing to write")
            atomic_write_json(tmp / "examples.json", examples)
        report.written = len(examples)
    finally:
        synth.delete()
    return report


def _entry(note: int, note_str: str, instrument_str: str, program: int, pitch: int,
           velocity: int, sr: int, family: str, source: str) -> dict:
    return {
        "note": note,
        "note_str": note_str,
        "instrument": program,
        "instrument_str": instrument_str,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": sr,
        "qualities": [0] * len(QUALITIES),
        "qualities_str": [],
        "instrument_family": family_code(family),
        "instrument_family_str": family,
        "instrument_source": source_code(source),
        "instrument_source_str": source,
    }


def _check_range(name: str, values: Sequence[int], lo: int, hi: int) -> None:
    bad = [v for v in values if not isinstance(v, (int, np.integer)) or not lo <= v <= hi]
    if bad:
        raise ConfigError(f"{name} values must be integers in {lo}-{hi}, got {bad}")
