"""Real-time scrubbing: 60 s of scripted cursor moves over the demo map, against a sound-card clock.

A bundled demo model (``--model``: a demo checkpoint's name such as ``natsiou-notes``, or a
checkpoint path; default the one the app opens on, ``best_sounding_demo_checkpoint``) encodes
the demo dataset; its clip codes are mapped with PCA (what the app's map shows first). The
cursor runs along lines between clips and circles over the map. A
:class:`models.realtime.producer.Producer` thread plays it through the real synth
(``models.realtime.synth.make_synth``: a frame model's FrameSynth, a clip model's GrainSynth with
its decode thread) at the default block size, resampled to 48 kHz; a consumer thread stands for
the sound card: it reads the app's callback block (``explorer.sound.audio_out.CALLBACK_BLOCK``)
once per block period on an absolute clock (``time.perf_counter``), posts the gesture's next
cursor position before each block, and counts underruns.

Printed: the load average at the start and the end (this machine is shared: underruns under a
load above its cores say more about the load than about the player); underruns; the
producer's step time (one engine pull + resample) median and worst against the engine block's
period; control-to-sound latency in stream samples: in the engine (posted -> the hop that plays
it, from the engine's control log) and end to end (the sound card's position when the control
was posted -> the device sample that plays it: the ring's lookahead and the resampler's delay
included); the CPU time the host stole from this (virtual) machine during the run, where
Linux reports it. Verdict last: PASS with no underrun, the producer keeping up (its 99.9th
percentile step inside the engine block's period: a lone stalled step is what the ring's
``EngineConfig.stall_s`` margin is there to ride out, and the underrun count says whether it
did), and both latencies within 30 ms.

    .venv/bin/python bench/bench_scrub.py [--seconds 60] [--device-sr 48000] [--model natsiou-notes]
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from explorer.core.paths import DEMO_CHECKPOINTS, DEMO_DATASET, best_sounding_demo_checkpoint
from explorer.sound.audio_out import CALLBACK_BLOCK
from models.checkpoints.checkpoint import load_checkpoint
from models.datasets import open_dataset
from models.inference.encode import encode_dataset
from models.mapping.projection import PCAProjector
from models.realtime.engine import EngineConfig, PlayEngine
from models.realtime.producer import Producer
from models.realtime.position import PositionField, pitch_labels
from models.realtime.synth import make_synth
from models.representations import representation_from_dict

LATENCY_GOAL_MS = 30.0
#: underruns this soon after the host stole CPU are counted apart (information: the verdict counts all)
STOLEN_WINDOW_S = 0.030


def checkpoint_path(model: str | None) -> Path:
    """``--model``: None -> the app's demo model; a demo checkpoint's name; else a path."""
    if model is None:
        return best_sounding_demo_checkpoint()
    named = DEMO_CHECKPOINTS / f"{model}.safetensors"
    return named if named.is_file() else Path(model)


def demo_engine(config: EngineConfig, path: Path) -> tuple[PlayEngine, np.ndarray]:
    """The model's engine with its PCA map of the demo dataset as the field; returns (engine, map points)."""
    ckpt = load_checkpoint(path)
    rep = representation_from_dict(dict(ckpt.representation))
    ds = open_dataset(DEMO_DATASET)
    enc = encode_dataset(ckpt.model, rep, ds)
    ok = np.flatnonzero(enc.ok)
    points = PCAProjector().fit(enc.clip_codes[ok]).points
    pitches = pitch_labels(ds, ok)
    engine = PlayEngine(lambda: make_synth(ckpt.model, rep, latent_shape=enc.latent_shape, layout=enc.layout),
                        sr=int(rep.sample_rate), config=config)
    engine.set_field(PositionField(points, enc.clip_codes[ok], pitches=pitches))
    return engine, points


def stolen_cpu_s() -> float | None:
    """Seconds of CPU the hypervisor gave to others (/proc/stat's steal column), None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def gesture(points: np.ndarray, seconds: float, seed: int = 0):
    """t (s) -> (x, y): 4 s lines from clip to clip, then 4 s circles about the map's centre, in turn."""
    rng = np.random.default_rng(seed)
    stops = points[rng.choice(len(points), size=int(seconds // 4) + 2)]
    centre, radius = points.mean(axis=0), 0.5 * points.std(axis=0)

    def at(t: float) -> tuple[float, float]:
        k, u = divmod(t / 4.0, 1.0)
        k = int(k)
        if k % 2 == 0:
            x, y = stops[k] + u * (stops[k + 1] - stops[k])
        else:
            a = 2 * math.pi * u
            x, y = centre + radius * np.array([math.cos(a), math.sin(a)])
        return float(x), float(y)

    return at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--device-sr", type=int, default=48000)
    ap.add_argument("--model", default=None, help="a demo checkpoint's name (natsiou-notes) or a checkpoint path")
    ap.add_argument("--lookahead", type=int, default=None,
                    help="the engine's lookahead in model samples (default EngineConfig's): latency against underruns")
    args = ap.parse_args()
    load_start = os.getloadavg()
    stolen_start = stolen_cpu_s()

    config = EngineConfig() if args.lookahead is None else EngineConfig(lookahead=args.lookahead)
    path = checkpoint_path(args.model)
    engine, points = demo_engine(config, path)
    block = CALLBACK_BLOCK  # the app's callback block
    producer = Producer(engine, device_sr=args.device_sr, card_block=block)
    period = block / args.device_sr
    engine_period_ms = config.block / engine.sr * 1e3
    where = gesture(points, args.seconds)
    engine.set_xy(*where(0.0))
    engine.start()
    sent: list[tuple[int, int]] = []  # (control seq, the card's position when posted)
    n_blocks = int(args.seconds / period)
    buf = np.zeros(block, np.float32)
    peak = [0.0]
    late = [0]
    stolen = np.zeros(n_blocks)  # the host's stolen CPU seen after each block (s)
    short: list[int] = []  # blocks that underran

    def card() -> None:
        t0 = time.perf_counter()
        for i in range(n_blocks):
            sent.append((engine.set_xy(*where(i * period)), producer.position))
            deadline = t0 + (i + 1) * period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                late[0] += 1
            before = producer.underruns
            producer.read_into(buf)
            peak[0] = max(peak[0], float(np.abs(buf).max()))
            stolen[i] = stolen_cpu_s() or 0.0  # after the read: the next deadline is a block away
            if producer.underruns > before:
                short.append(i)

    producer.fill_up()  # the stream opens with its lookahead ready, as a card's first callback finds it
    engine.settle(timeout=60)  # a grain synth: its first sound decoded
    producer.start()
    consumer = threading.Thread(target=card, name="sound-card")
    consumer.start()
    consumer.join()
    producer.close()
    load_end = os.getloadavg()
    stolen_end = stolen_cpu_s()
    if producer.error is not None:
        raise producer.error

    steps = producer.step_times[: min(producer.steps, len(producer.step_times))][8:] * 1e3  # past warm-up
    log = {r.seq: r for r in engine.control_log}
    in_engine, end_to_end = [], []
    for seq, card_pos in sent:
        r = log.get(seq)
        if r is None:
            continue
        in_engine.append((r.applied - r.posted) / engine.sr * 1e3)
        end_to_end.append((r.applied * producer.ratio - card_pos) / args.device_sr * 1e3)
    in_engine, end_to_end = np.array(in_engine), np.array(end_to_end)
    period_ms = period * 1e3
    synth = engine._voices[0].synth
    cores = os.cpu_count() or 1
    print(f"load average (1 min) at start {load_start[0]:.1f}, at end {load_end[0]:.1f}, on {cores} cores"
          + (" -- the machine is loaded by other work: underruns may come from that" if
             max(load_start[0], load_end[0]) > cores else ""))
    print(f"model {path.name} ({type(synth).__name__}, hop {engine.hop}), {len(points)} clips, {args.seconds:.0f} s, "
          f"engine block {config.block} samples at {engine.sr} Hz = {engine_period_ms:.1f} ms, "
          f"card block {block} at {args.device_sr} Hz = {period_ms:.1f} ms, lookahead {producer.lookahead} device samples"
          + (f", {synth.decodes} grain decodings" if hasattr(synth, "decodes") else ""))
    if stolen_start is not None and stolen_end is not None:
        print(f"CPU stolen by the host during the run: {stolen_end - stolen_start:.2f} s (all cores)")
    window = max(1, int(round(STOLEN_WINDOW_S / period)))
    seen = np.concatenate([[stolen[0]], stolen])  # seen[i]: before block i
    near = seen[window + 1:] - seen[: len(seen) - window - 1] > 0  # block i + window: steal in its window
    hit = [i for i in short if seen[i + 1] - seen[max(0, i - window)] > 0]
    print(f"underruns: {producer.underruns} (card blocks read late by the simulated clock: {late[0]}); "
          f"{len(hit)} of them within {STOLEN_WINDOW_S * 1e3:.0f} ms after CPU stolen by the host "
          f"(as are {100 * near.mean():.0f} % of all blocks)")
    p999 = float(np.percentile(steps, 99.9))
    print(f"producer step: median {np.median(steps):.2f} ms, 99.9th percentile {p999:.2f} ms, worst {steps.max():.2f} ms, "
          f"vs engine block period {engine_period_ms:.1f} ms ({producer.steps} steps; "
          f"ring margin for a stalled step {config.stall_s * 1e3:.0f} ms)")
    print(f"control-to-sound in the engine: median {np.median(in_engine):.1f} ms, worst {in_engine.max():.1f} ms "
          f"({len(in_engine)} controls; hop {engine.hop} samples)")
    print(f"control-to-sound end to end (ring + resampler): median {np.median(end_to_end):.1f} ms, "
          f"worst {end_to_end.max():.1f} ms")
    print(f"output peak {peak[0]:.3f}")
    fails = []
    if producer.underruns:
        fails.append(f"{producer.underruns} underruns")
    if p999 >= engine_period_ms:
        fails.append(f"99.9th percentile step {p999:.1f} ms >= block period {engine_period_ms:.1f} ms")
    if in_engine.max() > LATENCY_GOAL_MS:
        fails.append(f"engine latency {in_engine.max():.1f} ms > {LATENCY_GOAL_MS:.0f} ms")
    if end_to_end.max() > LATENCY_GOAL_MS:
        fails.append(f"end-to-end latency {end_to_end.max():.1f} ms > {LATENCY_GOAL_MS:.0f} ms")
    if peak[0] <= 0.01:
        fails.append("the stream was silent")
    print("verdict: PASS" if not fails else "verdict: FAIL " + "; ".join(fails))


if __name__ == "__main__":
    main()
