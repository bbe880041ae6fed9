"""Leave-facet-out and leave-phase-out splits (issue 16: generalisation you can see)."""

from __future__ import annotations

import pytest

from xane3.config import Config
from xane3.data.dataset import load_dataset
from xane3.data.splits import split_indices


@pytest.fixture(scope="module")
def embedded():
    return load_dataset(Config().data)


@pytest.mark.parametrize("kind", ["facet", "phase"])
def test_whole_groups_are_held_out_for_test_only(embedded, kind) -> None:
    labels = embedded.group_labels(kind)
    s = split_indices(labels, kind, 0.1, 0.1, seed=0)
    assert sorted(s["train"] + s["val"] + s["test"]) == list(range(len(labels)))
    held = {labels[i] for i in s["test"]}
    seen = {labels[i] for i in s["train"] + s["val"]}
    assert held and not held & seen  # no spectrum of a held-out group is trained or validated on
    assert len(s["test"]) >= 0.1 * len(labels) and len(held) == 1  # one facet / phase is enough
    assert abs(len(s["val"]) - 0.1 * len(labels)) <= 1
    others = split_indices(labels, kind, 0.1, 0.1, seed=1)
    assert {labels[i] for i in others["test"]} != held  # the seed picks which


def test_data_without_the_labels_is_refused(small_real_db) -> None:
    from xane3.data.dataset import load_dataset as load

    ds = load(Config(data=Config().data.__class__(db=str(small_real_db))).data)
    with pytest.raises(ValueError, match=r"data.split=facet: 40 of 40 spectra .* carry no facet label"):
        ds.group_labels("facet")
    with pytest.raises(ValueError, match="data.split=parent: no spectrum .* use data.split=structure"):
        ds.group_labels("parent")  # would silently be the structure split
    with pytest.raises(ValueError, match="needs at least 2"):
        split_indices(["(001)"] * 10, "facet", 0.1, 0.1, 0)
