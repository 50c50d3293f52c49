"""General MIDI programs mapped to NSynth's instrument families and sources.

NSynth has eleven families and no drums or sound effects, so GM's groups of eight map as
below; where a group mixes kinds (pianos, organs, ensembles, ethnic, percussive) single
programs are placed by what they sound like. Programs 120-127 (sound effects: fret noise,
breath, seashore, birds, telephone, helicopter, applause, gunshot) have no pitched family and
are refused.

=========  =================================  ===========  ============================
programs   GM group                           family       source
=========  =================================  ===========  ============================
0-7        piano                              keyboard     acoustic (0,1,3,6), electronic
8-15       chromatic percussion               mallet       acoustic
16-20      organ                              organ        electronic (16-18), acoustic
21-23      accordion, harmonica               reed         acoustic
24-31      guitar                             guitar       acoustic (24,25), electronic
32-39      bass                               bass         acoustic (32), electronic,
                                                           synthetic (38,39)
40-46      strings, harp                      string       acoustic
47         timpani                            mallet       acoustic
48-51      string ensembles                   string       acoustic (48,49), synthetic
52-54      choir, voice                       vocal        acoustic (52,53), synthetic
55         orchestra hit                      brass        synthetic
56-63      brass                              brass        acoustic, synthetic (62,63)
64-71      reed                               reed         acoustic
72-79      pipe                               flute        acoustic
80-103     synth lead, pad, effects           synth_lead   synthetic
104-106    sitar, banjo, shamisen             guitar       acoustic
107, 110   koto, fiddle                       string       acoustic
108        kalimba                            mallet       acoustic
109, 111   bagpipe, shanai                    reed         acoustic
112-117    bells, agogo, steel drum, blocks   mallet       acoustic
118-119    synth drum, reverse cymbal         mallet       synthetic
=========  =================================  ===========  ============================
"""

from __future__ import annotations

from models.datasets.nsynth import FAMILIES, SOURCES
from models.errors import ConfigError

_TABLE: dict[int, tuple[str, str]] = {}


def _put(programs: range | tuple[int, ...], family: str, source: str) -> None:
    for p in programs:
        _TABLE[p] = (family, source)


_put(range(0, 8), "keyboard", "electronic")
_put((0, 1, 3, 6), "keyboard", "acoustic")
_put(range(8, 16), "mallet", "acoustic")
_put(range(16, 19), "organ", "electronic")
_put((19, 20), "organ", "acoustic")
_put(range(21, 24), "reed", "acoustic")
_put(range(24, 32), "guitar", "electronic")
_put((24, 25), "guitar", "acoustic")
_put(range(32, 40), "bass", "electronic")
_put((32,), "bass", "acoustic")
_put((38, 39), "bass", "synthetic")
_put(range(40, 47), "string", "acoustic")
_put((47,), "mallet", "acoustic")
_put((48, 49), "string", "acoustic")
_put((50, 51), "string", "synthetic")
_put((52, 53), "vocal", "acoustic")
_put((54,), "vocal", "synthetic")
_put((55,), "brass", "synthetic")
_put(range(56, 62), "brass", "acoustic")
_put((62, 63), "brass", "synthetic")
_put(range(64, 72), "reed", "acoustic")
_put(range(72, 80), "flute", "acoustic")
_put(range(80, 104), "synth_lead", "synthetic")
_put((104, 105, 106), "guitar", "acoustic")
_put((107, 110), "string", "acoustic")
_put((108,), "mallet", "acoustic")
_put((109, 111), "reed", "acoustic")
_put(range(112, 118), "mallet", "acoustic")
_put((118, 119), "mallet", "synthetic")


def gm_family(program: int) -> tuple[str, str]:
    """``(family, source)`` of a GM program (0-119).

    Raises
    ------
    ConfigError
        The program is out of range or a sound effect (120-127).
    """
    if program not in _TABLE:
        if 120 <= program <= 127:
            raise ConfigError(f"GM program {program} is a sound effect; NSynth has no family for it")
        raise ConfigError(f"GM program must be in 0-119, got {program}")
    return _TABLE[program]


def family_code(family: str) -> int:
    return FAMILIES.index(family)


def source_code(source: str) -> int:
    return SOURCES.index(source)
