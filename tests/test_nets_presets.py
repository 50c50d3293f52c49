"""The preset registry as a whole: summaries, the generated docs table, test coverage of presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.nets.presets_frames import FRAME_PRESETS
from models.nets.registry import PRESETS, get_preset
from models.nets.summary import markdown_table, short_citation, summarize_preset, summarize_presets

DOC = Path(__file__).resolve().parents[1] / "docs" / "presets.md"
BEGIN = "<!-- BEGIN preset table"
END = "<!-- END preset table -->"

get_preset("colonel-hybrid")  # loads the catalogue


def test_every_preset_is_run_at_tiny_size_by_a_test():
    # test_nets_frames.py parametrizes over FRAME_PRESETS, test_nets_natsiou.py and
    # test_nets_lionello.py over every preset with their prefix; test_checkpoint.py and
    # test_export.py over the whole registry. A preset outside these three groups would have
    # no shape / learning test: give it one, then extend this set.
    covered = set(FRAME_PRESETS) | {n for n in PRESETS if n.startswith(("natsiou-", "lionello-"))}
    assert set(PRESETS) == covered


def test_summary_counts_are_the_hand_computed_ones():
    hybrid = summarize_preset("colonel-hybrid")
    enc = 1025 * 512 + 512 * 256 + 256 * 128 + 128 * 64  # no bias anywhere
    assert hybrid.n_parameters == 2 * enc == 1_393_664
    assert (hybrid.input_shape, hybrid.latent_shape, hybrid.kind, hybrid.sample_rate) == (
        (1025,), (64,), "stft_frames", 22050,
    )
    assert hybrid.n_fitted == 0 and hybrid.trainable and not hybrid.variational
    shallow = summarize_preset("roche-shallow-ae")
    assert shallow.n_parameters == (513 * 16 + 16) + (16 * 513 + 513)
    pca = summarize_preset("roche-pca")
    assert pca.n_parameters == 0 and not pca.trainable
    assert pca.n_fitted == 513 + 16 * 513 + 16 + 16  # mean, components, variances, ratios
    vae = summarize_preset("lionello-dcvae-digits")
    assert vae.variational and vae.latent_shape == (20,) and vae.kind == "waveform"
    assert summarize_preset("natsiou-best").latent_shape == (512, 2, 8)


def test_short_citations():
    assert short_citation(get_preset("roche-vae").paper) == "Roche et al."
    assert short_citation(get_preset("lionello-ccvae-drums").paper) == "Lionello & Purwins"
    assert short_citation("Smith. A title") == "Smith"
    assert short_citation("") == ""


@pytest.fixture(scope="module")
def table() -> str:
    return markdown_table(summarize_presets())


def test_table_lists_every_preset_with_its_numbers(table):
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(PRESETS)
    hybrid = next(r for r in rows if r.startswith("| `colonel-hybrid` "))
    assert "| Colonel et al. | `deep_ae` | 1,393,664 | `stft_frames` 1025, 22.05 kHz | 64 |" in hybrid
    pca = next(r for r in rows if r.startswith("| `roche-pca` "))
    assert "| 0 (8,753 fitted) |" in pca
    vae = next(r for r in rows if r.startswith("| `roche-vae` "))
    assert "| 16 (mean, log-var) |" in vae


def test_docs_table_is_up_to_date(table):
    text = DOC.read_text(encoding="utf-8")
    start, stop = text.index(BEGIN), text.index(END)
    block = text[text.index("\n", start) + 1 : stop].strip("\n")
    assert block == table, "docs/presets.md is stale: run scripts/preset_table.py"
