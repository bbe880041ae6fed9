"""XANE(3): the assembled model (paper section 2.2).

The model sees tensors only. A batch (see ``xane3.data.graphs.GraphBatch``) gives
node species, edges (receiver, sender) with their geometry, and for every spectrum
("sample") the absorber atoms it pools and the context atoms its attention sees.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from xane3.config import ModelConfig
from xane3.model.backend import check_backend, constants_from_model
from xane3.model.basis import GaussianBasis, SigmoidBackground
from xane3.model.embedding import SpeciesEmbedding
from xane3.model.heads import CoefficientHead, E0Head
from xane3.model.interaction import InteractionBlock
from xane3.model.pooling import AbsorberAttentionPooling, MeanContextPooling, absorber_features, irreps_blocks
from xane3.model.radial import EdgeGeometry


class XANE3(nn.Module):
    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        check_backend(cfg.backend)  # a missing cuEquivariance install fails here, with the pip extra
        self.config = cfg
        self.register_buffer("energy", torch.linspace(cfg.e_min, cfg.e_max, cfg.n_points))
        # data statistics the trainer sets: E0 z-scoring
        self.register_buffer("e0_mean", torch.zeros(()))
        self.register_buffer("e0_std", torch.ones(()))
        # what training recorded (xane3.train.metadata.ModelMetadata); set by load_checkpoint
        self.metadata = None
        self.geometry = EdgeGeometry(cfg.r_max, cfg.num_radial, cfg.l_max, cfg.radial_basis)
        self.hidden_irreps = o3.Irreps(cfg.hidden_irreps)
        self.hidden_blocks = irreps_blocks(self.hidden_irreps)
        self.embedding = SpeciesEmbedding(cfg.num_species, cfg.m0)
        blocks, irreps_in = [], o3.Irreps(f"{cfg.m0}x0e")
        for _ in range(cfg.num_layers):
            blocks.append(InteractionBlock(
                irreps_in, self.hidden_irreps, self.geometry.sh_irreps, cfg.num_radial,
                cfg.radial_hidden, cfg.layer_norm, cfg.residual, cfg.backend, cfg.tensor_product,
            ))
            irreps_in = self.hidden_irreps
        self.blocks = nn.ModuleList(blocks)
        pool_cls = AbsorberAttentionPooling if cfg.pooling == "attention" else MeanContextPooling
        self.pooling = pool_cls(cfg.m0, cfg.attention_hidden)
        n_norms = sum(m for m, ir in self.hidden_irreps if ir.l > 0)
        self.readout_dim = 2 * cfg.m0 + n_norms
        self.coefficients = CoefficientHead(
            self.readout_dim, cfg.readout_hidden, cfg.n_gaussians + int(cfg.background),
            cfg.dropout,
        )
        self.basis = GaussianBasis(
            self.energy, cfg.n_gaussians, cfg.basis_widths, cfg.centers_init,
            cfg.learn_centers, cfg.learn_widths,
        )
        self.background = SigmoidBackground() if cfg.background else None
        self.e0_head = E0Head(self.readout_dim, cfg.e0_hidden) if cfg.e0_head else None
        self.register_load_state_dict_pre_hook(constants_from_model)  # checkpoints cross backends

    @torch.no_grad()
    def place_edge(self, e0: float) -> None:
        """Put the edge-step centre and physics-initialised basis centres at ``e0`` (eV, model axis)."""
        self.basis.place_edge(e0)
        if self.background is not None:
            self.background.center.fill_(e0)

    # -- backbone -------------------------------------------------------------
    def edge_features(self, edge_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(spherical harmonics, radial features) of edge vectors; cacheable."""
        return self.geometry(edge_vec)

    def backbone(self, batch) -> torch.Tensor:
        sh, rad = getattr(batch, "edge_sh", None), getattr(batch, "edge_rad", None)
        if sh is None or rad is None:
            sh, rad = self.edge_features(batch.edge_vec)
        h = self.embedding(batch.z)
        for block in self.blocks:
            h = block(h, batch.edge_index, sh.to(h.dtype), rad.to(h.dtype))
        return h

    # -- readout --------------------------------------------------------------
    def readout(self, h: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = int(batch.n_samples)
        s_abs, norms = absorber_features(
            h, self.hidden_blocks, batch.abs_atom, batch.abs_sample, n
        )
        s = h[:, : self.config.m0]
        c, attention = self.pooling(s_abs, s, batch.ctx_atom, batch.ctx_sample)
        return torch.cat([s_abs, c, norms], dim=-1), attention

    def spectrum(self, z: torch.Tensor) -> torch.Tensor:
        coef = self.coefficients(z)
        energy = self.energy  # never cast down: bf16 steps 32 eV near 7 keV (the basis, in float32)
        k = self.config.n_gaussians
        y = coef[:, :k] @ self.basis(energy).to(z.dtype)
        if self.background is not None:
            y = y + coef[:, k:k + 1] * self.background(energy).to(z.dtype)
        return y

    def forward(self, batch) -> dict[str, torch.Tensor]:
        """{"spectrum": [S, n_E], "e0": [S] z-scored (absent without the head), "z": [S, d],
        "attention": [C] weight per ``batch.ctx_atom`` entry (absent with mean pooling)}."""
        h = self.backbone(batch)
        z, attention = self.readout(h, batch)
        out = {"spectrum": self.spectrum(z), "z": z}
        if attention is not None:
            out["attention"] = attention
        if self.e0_head is not None:
            out["e0"] = self.e0_head(z)
        return out

    def e0_to_ev(self, e0_z: torch.Tensor) -> torch.Tensor:
        return e0_z * self.e0_std + self.e0_mean

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
