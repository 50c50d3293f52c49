"""The map's categorical palette: 20+ classes that the eye tells apart."""

from __future__ import annotations

import pytest

from explorer.map.palette import categorical_palette, min_distance

#: CIEDE2000 units; 2.3 is a just-noticeable difference, the old palette had 3.0 at 11 classes
MIN_DELTA_E_20 = 15.0


def test_no_two_of_20_classes_look_alike() -> None:
    colours = categorical_palette(20)
    assert len(set(colours)) == 20
    assert min_distance(colours) >= MIN_DELTA_E_20


@pytest.mark.parametrize("n", [2, 11, 16])
def test_fewer_classes_are_further_apart(n: int) -> None:
    assert min_distance(categorical_palette(n)) >= min_distance(categorical_palette(20))


def test_the_first_colours_do_not_depend_on_the_class_count() -> None:
    assert categorical_palette(30)[:11] == categorical_palette(11)


def test_the_old_teals_would_fail() -> None:
    assert min_distance(["#86bcb6", "#76b7b2"]) < 5.0 < MIN_DELTA_E_20
