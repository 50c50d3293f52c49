#!/usr/bin/env bash
# Reproduce the papers' comparisons on our own data, at a CPU size (docs/results/).
#
#   scripts/reproduce_papers.sh [roche|natsiou|natsiou128|colonel|lionello|all]   (default: all)
#
# Datasets, feature cache and run folders go under $WORK (default /tmp/latent-explorer-papers);
# nothing is written into the repository. Each comparison prints its tables and writes them to
# $WORK/runs/<paper>/comparison.md; a comparison that was interrupted resumes when run again.
# THREADS (default 1) sets torch's CPU threads. The sizes are those of docs/results/*.md.
set -euo pipefail

WORK=${WORK:-/tmp/latent-explorer-papers}
THREADS=${THREADS:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
LT=${LT:-$HERE/.venv/bin/latent-trainer}
CACHE=$WORK/cache
export OMP_NUM_THREADS=$THREADS
mkdir -p "$WORK/runs"

build() {  # build <what> <out> <args...>: only once
    local what=$1 out=$2
    shift 2
    [ -e "$out" ] || "$LT" dataset build "$what" --out "$out" "$@"
}

roche() {
    # Roche et al. 2019: PCA vs shallow AE vs deep AE vs LSTM-AE vs VAE across latent sizes, on
    # NSynth-style notes: 21 GM programs x 5 pitches (48-72 by 6), velocity 100 (105 notes, 4 s).
    build notes "$WORK/notes-roche" --programs 0 6 11 16 19 24 27 32 33 40 42 48 56 57 61 65 68 71 73 80 88 \
        --pitches 48-72:6
    "$LT" compare --data "$WORK/notes-roche" \
        --presets roche-pca roche-shallow-ae roche-deep-ae roche-lstm-ae roche-vae \
        --latent-dims 4 8 16 32 --epochs 12 --threads "$THREADS" --device cpu \
        --set roche-lstm-ae:model.hidden_size=64 \
        --metrics rmse ssim f1 --cache-dir "$CACHE" --out "$WORK/runs/roche"
}

natsiou() {
    # Natsiou et al.: the variant sets of Tables I-IV on notes of many instruments at one pitch
    # (GM programs 0-119 at MIDI 60: 119 notes). Log-mel reduced to 64 bands x 128 frames (4 s,
    # hop 500) and channels 8-16-32, so that the tiny presets' dense sizes 64 / 32 / 16 keep the
    # paper's ratios to the 64-value conv grid (8192 / 4096 / 2048 against 8192).
    build notes "$WORK/notes-natsiou" --programs 0-119 --pitches 60
    "$LT" compare --data "$WORK/notes-natsiou" --tiny \
        --presets natsiou-baseline natsiou-avg-pool natsiou-no-pool natsiou-dense-2048 natsiou-no-dense \
                  natsiou-dropout-ed natsiou-kr-l2-d natsiou-ar-l2-ed natsiou-sigmoid \
        --set model.channels=[8,16,32] --set rep.sample_rate=16000 --set rep.n_fft=1024 \
        --set rep.win_length=690 --set rep.n_mels=64 --set rep.hop_length=500 --set rep.n_frames=128 \
        --set train.batch_size=16 --epochs 40 --threads "$THREADS" --device cpu \
        --metrics rmse ssim precision recall f1 --cache-dir "$CACHE" --out "$WORK/runs/natsiou"
}

lionello() {
    # Lionello & Purwins, both 1-NN protocols (docs/results/lionello.md, 1 December 2026). Spoken
    # digits from espeak-ng: 8 training speakers (en-us, en-gb x m1 m3 f2 f4) x 10 digits x 16
    # takes (speed and pitch jittered), 1,280 clips, split at random over clips (stratified by
    # digit, 70/10/20): the test side holds held-out takes of the training speakers (the paper's
    # protocol, one speaker's 400 / 100 clips). 4 unseen speakers (en-us m2 m5 f1 f3) x 2 takes.
    build digits "$WORK/digits-seen16" --voices en-us en-gb --variants m1 m3 f2 f4 --repetitions 16
    build digits "$WORK/digits-unseen" --voices en-us --variants m2 m5 f1 f3 --repetitions 2
    folder_by_digit "$WORK/digits-seen16" "$WORK/folder-digits-seen16"
    folder_by_digit "$WORK/digits-unseen" "$WORK/folder-digits-unseen"
    local run=$WORK/runs/lionello-w2
    # CC-VAE (CPU size) with the multi-resolution STFT term; 3,000 steps, then resumed to 5,000
    [ -e "$run/best.safetensors" ] || \
    "$LT" train --preset lionello-ccvae-digits-small --data "$WORK/folder-digits-seen16" --run-dir "$run" \
        --seed 0 --device cpu --threads "$THREADS" --cache-dir "$CACHE" --epochs 1000 --max-steps 3000 \
        --set train.batch_size=8 --set train.lr=0.001 --set train.patience=0 --set model.stft_weight=1.0 \
        --set 'train.split=[0.7,0.1,0.2]'
    "$LT" evaluate --run-dir "$run" --split test --cache-dir "$CACHE"
    "$LT" evaluate --run-dir "$run" --unseen "$WORK/folder-digits-unseen" --cache-dir "$CACHE"
    "$LT" train --run-dir "$run" --resume --threads "$THREADS" --max-steps 5000 --cache-dir "$CACHE"
    "$LT" evaluate --run-dir "$run" --split test --cache-dir "$CACHE"
    "$LT" evaluate --run-dir "$run" --unseen "$WORK/folder-digits-unseen" --cache-dir "$CACHE"
}

folder_by_digit() {  # folder_by_digit <fsdd> <out>: the digits as a folder with one sub-folder per
    # digit (labels = digit, no group key), so the trainer's split is random over clips instead of
    # grouped by speaker: held-out takes of the speakers it trains on (Lionello's protocol)
    local fsdd=$1 out=$2 f b
    [ -e "$out" ] && return 0
    for f in "$fsdd"/*.wav; do
        b=$(basename "$f")
        mkdir -p "$out/${b%%_*}"
        ln -s "$(realpath "$f")" "$out/${b%%_*}/$b"
    done
}

folder_by_family() {  # folder_by_family <notes> <out>: the notes as a folder of audio, one sub-folder
    # per NSynth family (labels = family, no group key), so the trainer's split is random over
    # notes (stratified by family) instead of grouped by instrument: the papers' splits
    local notes=$1 out=$2 f b fam
    [ -e "$out" ] && return 0
    for f in "$notes"/audio/*.wav; do
        b=$(basename "$f")
        fam=$(echo "$b" | sed -E 's/_(acoustic|electronic|synthetic)_.*//')  # synth_lead stays whole
        mkdir -p "$out/$fam"
        ln -s "$(realpath "$f")" "$out/$fam/$b"
    done
}

colonel() {
    # Colonel et al. 2017, Table 3 hybrid at the paper's width (1025-512-256-128-64, no bias, l2),
    # on 1025-bin frames (n_fft 2048, hop 512, each frame over its maximum) of 718 notes: 60 GM
    # programs (0-118 by 2) x 6 pitches x 2 velocities, at the notes' own 16 kHz. Split random
    # over notes (the paper: random over frames of one synthesizer), 80/10/10.
    build notes "$WORK/notes-colonel" --programs $(seq 0 2 119) --pitches 36 45 52 60 67 76 --velocities 75 127
    folder_by_family "$WORK/notes-colonel" "$WORK/folder-colonel"
    # 30 epochs of cosine schedule, cut at the end of epoch 14 (docs/results/colonel.md: the run
    # was stopped there by a STOP file; --max-steps ends it at the same step)
    [ -e "$WORK/runs/colonel-hybrid/best.safetensors" ] || \
    "$LT" train --preset colonel-hybrid --data "$WORK/folder-colonel" --run-dir "$WORK/runs/colonel-hybrid" \
        --seed 0 --device cpu --threads "$THREADS" --cache-dir "$CACHE" --set rep.sample_rate=16000 \
        --epochs 30 --set train.lr_schedule=cosine --set train.patience=0 --max-steps 10136
    "$LT" evaluate --run-dir "$WORK/runs/colonel-hybrid" --split test --cache-dir "$CACHE"
}

natsiou128() {
    # Natsiou et al.'s setting: 128 mel bands, one pitch across instruments. 595 notes: GM programs
    # 0-119 at MIDI 60 x velocities 40 60 80 100 127 (5 silent renders skipped), split at random over
    # notes (stratified by family) as the paper's 80/10/10. natsiou-best (Table IV, no dense layer)
    # with channels 32-64-128 (the paper: 128-256-512), hop 256 (256 frames for 4 s), batch 16;
    # constant Adam 1e-3; the documented run was stopped (STOP file) after epoch 88, step 2,640: resume
    # is exact, so --max-steps gives the same checkpoint (docs/results/natsiou.md).
    build notes "$WORK/notes-natsiou128" --programs 0-119 --pitches 60 --velocities 40 60 80 100 127
    folder_by_family "$WORK/notes-natsiou128" "$WORK/folder-natsiou128"
    [ -e "$WORK/runs/natsiou128/best.safetensors" ] || \
    "$LT" train --preset natsiou-best --data "$WORK/folder-natsiou128" --run-dir "$WORK/runs/natsiou128" \
        --seed 0 --device cpu --threads "$THREADS" --cache-dir "$CACHE" --set rep.hop_length=256 \
        --set rep.n_frames=256 --set model.channels=[32,64,128] --set train.batch_size=16 \
        --epochs 200 --set train.patience=0 --max-steps "${NATSIOU128_STEPS:-2640}"
    "$LT" evaluate --run-dir "$WORK/runs/natsiou128" --split test --cache-dir "$CACHE"
}

case "${1:-all}" in
    roche) roche ;;
    natsiou) natsiou ;;
    lionello) lionello ;;
    colonel) colonel ;;
    natsiou128) natsiou128 ;;
    all) roche; natsiou; natsiou128; colonel; lionello ;;
    *) echo "usage: $0 [roche|natsiou|natsiou128|colonel|lionello|all]" >&2; exit 2 ;;
esac
