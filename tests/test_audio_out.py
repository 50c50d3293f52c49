"""explorer.sound.audio_out: the mixer fades (no clicks), the sink records, the factory falls back."""

from __future__ import annotations

import numpy as np

from explorer.sound.audio_out import FADE_S, Mixer, RecordingSink, make_output, resample


def test_new_sound_cuts_old_with_fades_and_no_click():
    sr = 8000
    m = Mixer(sr)
    fade = int(FADE_S * sr)
    m.play(np.ones(4000, np.float32))
    head = m.render(200)
    assert head[0] == 0.0 and np.isclose(head[fade - 1], 1.0)  # fade-in from silence
    assert np.allclose(head[fade:], 1.0)
    m.play(-np.ones(4000, np.float32))  # switch mid-sound
    out = m.render(400)
    # old sound fades out while the new one fades in: no step larger than a fade step
    steps = np.abs(np.diff(np.concatenate([head[-1:], out])))
    assert steps.max() <= 2.0 / (fade - 1) + 1e-6
    assert np.allclose(out[fade:], -1.0)
    m.stop()
    tail = m.render(400)
    assert np.abs(np.diff(tail)).max() <= 1.0 / (fade - 1) + 1e-6 and np.allclose(tail[fade:], 0.0)
    assert not m.is_playing


def test_sound_plays_to_its_end_then_silence():
    m = Mixer(1000)
    m.play(np.full(50, 0.5, np.float32))
    out = m.render(100)
    assert np.allclose(out[10:50], 0.5) and np.allclose(out[50:], 0.0)
    assert not m.is_playing


def test_sink_records_and_factory_falls_back():
    sink = RecordingSink()
    sink.play(np.arange(3, dtype=np.float32), 16000)
    sink.stop()
    assert len(sink.played) == 1 and sink.played[0][1] == 16000 and sink.stops == 1
    out, msg = make_output(force_sink=True)
    assert isinstance(out, RecordingSink) and "sink" in msg
    out, msg = make_output()  # this machine has PortAudio but no sound card
    assert msg.startswith("Sound")


def test_resample_keeps_duration_and_pitch():
    sr, target = 16000, 44100
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    r = resample(y, sr, target)
    assert abs(len(r) - target) <= 1
    spec = np.abs(np.fft.rfft(r))
    assert abs(np.argmax(spec) * target / len(r) - 440) < 2


def test_the_callback_counts_the_cards_underflows_and_mixes_the_stream_source():
    import types

    from explorer.sound.audio_out import SoundDeviceOutput

    class OutputStream:
        def __init__(self, *, callback, **kw):
            self.callback = callback

        def start(self):
            pass

    sd = types.SimpleNamespace(OutputStream=OutputStream,
                               query_devices=lambda device=None, kind=None: {"name": "fake", "default_samplerate": 48000})
    out = SoundDeviceOutput(sd)

    class Source:
        def read_into(self, buf):
            buf[:] = 0.25

    out.set_stream_source(Source())
    block = np.zeros((256, 1), np.float32)
    for flagged in (False, True, False, True):
        out._stream.callback(block, 256, None, types.SimpleNamespace(output_underflow=flagged))
    assert out.underflows == 2 and np.all(block == 0.25)
