"""Structure builders of the FEFF10 data set: composition, density, coordination, slabs."""

from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from xane3.datagen import structures as st

# Known densities (g/cm^3), independent of our cells: handbook / mineral data values.
KNOWN_DENSITY = {
    "alpha-Fe2O3": 5.26,  # hematite, Anthony et al., Handbook of Mineralogy (5.26 calc.)
    "beta-Fe2O3": 5.12,  # X-ray density for a = 9.393 Å (ICDD 00-039-0238), 16 Fe2O3 / cell
    "gamma-Fe2O3": 4.87,  # maghemite, Handbook of Mineralogy (4.87 calc.)
    "Fe3O4": 5.20,  # magnetite, Handbook of Mineralogy (5.175-5.20)
    "FeO": 5.87,  # stoichiometric wustite, X-ray density for a = 4.332 Å
}
FORMULA = {"alpha-Fe2O3": "Fe2O3", "beta-Fe2O3": "Fe2O3", "gamma-Fe2O3": "Fe21O32",
           "Fe3O4": "Fe3O4", "FeO": "FeO"}
# Fe-O coordination numbers of the bulk Fe sites (tetrahedral 4, octahedral 6).
FE_CN = {"alpha-Fe2O3": {6}, "beta-Fe2O3": {6}, "gamma-Fe2O3": {4, 6}, "Fe3O4": {4, 6},
         "FeO": {6}}


@pytest.mark.parametrize("phase", st.PHASES)
def test_bulk_composition_density_coordination(phase: str) -> None:
    b = st.bulk(phase)
    assert b.composition.reduced_formula == FORMULA[phase]
    rho = st.density(b)
    assert abs(rho / KNOWN_DENSITY[phase] - 1) < 0.02, (phase, rho)
    atoms = st.to_atoms(b)
    assert neighbor_list("d", atoms, 3.0).min() > 1.8  # no overlapping Wyckoff sites
    cn = st._fe_o_cn(atoms)
    assert set(cn[atoms.numbers == 26].tolist()) == FE_CN[phase]


def test_magnetite_origin_choice() -> None:
    """Origin choice 1: 8 tetrahedral + 16 octahedral Fe in the 56-atom cell."""
    atoms = st.to_atoms(st.bulk("Fe3O4"))
    assert len(atoms) == 56
    cn = st._fe_o_cn(atoms)[atoms.numbers == 26]
    assert (cn == 4).sum() == 8 and (cn == 6).sum() == 16


@pytest.fixture(scope="module")
def hematite_slabs() -> list[st.Slab]:
    return [st.make_slab("alpha-Fe2O3", f) for f in st.FACETS]


def test_slab_thickness_vacuum_stoichiometry(hematite_slabs: list[st.Slab]) -> None:
    for s in hematite_slabs:
        a = s.atoms
        thick, vac = st.thickness_and_vacuum(a)
        assert abs(vac - st.VACUUM) < 1e-6
        assert 2.0 < thick < 12.0
        assert st.layer_count(a) >= st.N_LAYERS
        assert np.allclose(a.cell[2, :2], 0) and np.allclose(a.cell[:2, 2], 0)
        nfe, no = (a.numbers == 26).sum(), (a.numbers == 8).sum()
        assert 2 * no == 3 * nfe  # stoichiometric Fe2O3
        assert 16 <= nfe <= 80  # tens of Fe sites
        assert sorted(s.surface_fe + s.inner_fe) == list(np.where(a.numbers == 26)[0])
        assert s.surface_fe  # a slab always has under-coordinated Fe


def test_rattle_is_seeded_and_bounded(hematite_slabs: list[st.Slab]) -> None:
    p = hematite_slabs[0]
    r1, r1b, r2 = st.rattle(p, 1), st.rattle(p, 1), st.rattle(p, 2)
    assert np.array_equal(r1.atoms.positions, r1b.atoms.positions)
    assert r1.id != r2.id and r1.parent == p.id == p.parent
    assert 0.01 <= r1.rattle_sigma[0] <= 0.1 and 0.02 <= r1.rattle_sigma[1] <= 0.1
    assert np.allclose(r1.atoms.cell[2], p.atoms.cell[2])  # vacuum vector untouched
    shift = np.linalg.norm(r1.atoms.positions - p.atoms.positions, axis=1)
    assert 0 < np.median(shift) < 0.5


def test_all_slabs_order_is_balanced() -> None:
    slabs = st.all_slabs(1, ("FeO", "Fe3O4"), ((0, 0, 1), (1, 1, 0)))
    assert len(slabs) == 8
    assert [s.rattle for s in slabs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {(s.phase, s.facet) for s in slabs[:4]} == {(p, f) for p in ("FeO", "Fe3O4")
                                                       for f in ("001", "110")}


def test_regenerated_slabs_carry_the_ids_their_shard_rows_read_back_with() -> None:
    """One id (xane3.data.identity): a slab the generator builds today is named as its embedded
    row is read back, and its rattled copies (seeded as before 2026-12) are the rows' too."""
    from xane3.data.embedded import read_shards

    rows = {(r.meta["phase"], r.meta["facet"], r.meta["rattle"]): r for r in read_shards()}
    parent = st.make_slab("FeO", (0, 0, 1))
    for k in (0, 1, 2):
        row = rows[("FeO", parent.facet, k)]
        slab = st.rattle(parent, k)
        assert slab.id == row.meta["structure_id"] and slab.parent == row.meta["parent"]
        np.testing.assert_allclose(slab.atoms.positions, row.atoms.positions, atol=1e-5)
