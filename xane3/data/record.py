"""The one in-memory record every reader produces, before normalisation.

Readers differ in format, not in meaning: each yields ``SpectrumRecord`` objects
holding the raw absolute-energy spectrum, its E0 reference and (when known) the
structure and absorber sites. Normalisation and the database take it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms


@dataclass
class SpectrumRecord:
    """One raw spectrum as read from a file.

    energy: absolute energies in eV, strictly increasing.
    mu: absorption on that axis (arbitrary units; normalised later).
    e0: absolute energy the code's own relative axis refers to (Fermi level /
        threshold), or None when the source has none (then the inflection point
        is used and ``e0_kind`` becomes "inflection").
    atoms: the structure (periodic when known), or None for parser-only sources.
    absorbers: indices into ``atoms`` of the absorbing sites this spectrum averages.
    """

    energy: np.ndarray
    mu: np.ndarray
    source: str
    absorber_z: int
    e0: float | None = None
    e0_kind: str = "inflection"
    atoms: Atoms | None = None
    absorbers: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
