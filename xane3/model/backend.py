"""Equivariant kernels by backend: e3nn (default) or NVIDIA cuEquivariance.

``model.backend="cuequivariance"`` runs the per-edge tensor product and the
residual self-connections through ``cuequivariance_torch`` (fused CUDA kernels
when ``cuequivariance-ops-torch`` is installed, its pure-PyTorch fallback
otherwise). Both backends use e3nn's ``mul_ir`` layout, the same path order,
"component" irrep and "element" path normalisation, so the weights are the same
numbers: a state dict moves between backends unchanged (key for key, shape for
shape). Constant coefficient tables (cuEquivariance's, and the Wigner-3j
buffers of e3nn's generated code) depend on the irreps alone: they are rebuilt
at construction, and :func:`constants_from_model` makes loading ignore them.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch
from e3nn import o3
from torch import nn

BACKENDS = ("e3nn", "cuequivariance")
INSTALL_HINT = (
    "pip install 'xane3[cuda]' (cuequivariance-torch + CUDA 12 kernels; it keeps your torch "
    "build), or plain 'pip install cuequivariance-torch' for its CPU/PyTorch fallback"
)


def cuequivariance_available() -> bool:
    """True when ``cuequivariance_torch`` imports (the fallback runs anywhere)."""
    try:
        importlib.import_module("cuequivariance_torch")
    except ImportError:
        return False
    return True


def cuda_kernels_available() -> bool:
    """True when cuEquivariance's compiled CUDA ops are installed (``xane3[cuda]``)."""
    return importlib.util.find_spec("cuequivariance_ops_torch") is not None


def _require():
    try:
        cue = importlib.import_module("cuequivariance")
        cuet = importlib.import_module("cuequivariance_torch")
    except ImportError as exc:
        raise ImportError(f"model.backend='cuequivariance' needs cuequivariance-torch: {INSTALL_HINT}"
                          f" (import failed: {exc})") from exc
    return cue, cuet


def _method() -> str:
    # fused_tp needs the compiled ops; without them "naive" avoids a warning per module
    return "fused_tp" if cuda_kernels_available() else "naive"


def _same_dtype(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Under autocast operands arrive in mixed precision; cuEquivariance contracts them as
    they are (its fused kernels do float32/float64 math only), so run at the widest."""
    dt = xs[0].dtype
    for x in xs[1:]:
        dt = torch.promote_types(dt, x.dtype)
    return tuple(x.to(dt) for x in xs)


def _cue_irreps(cue, irreps: o3.Irreps):
    return cue.Irreps("O3", str(o3.Irreps(irreps)))


def _constants_not_in_state_dict(module: nn.Module) -> nn.Module:
    """cuEquivariance stores coefficient tables as buffers; they depend only on the irreps."""
    for m in module.modules():
        m._non_persistent_buffers_set.update(name for name, _ in m.named_buffers(recurse=False))
    return module


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"model.backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "cuequivariance":
        _require()


def tensor_product(backend: str, irreps_in1: o3.Irreps, irreps_in2: o3.Irreps,
                   irreps_out: o3.Irreps) -> nn.Module:
    """Fully connected TP with per-sample weights: ``tp(x1, x2, weights)``; has ``weight_numel``."""
    if backend == "e3nn":
        return o3.FullyConnectedTensorProduct(
            irreps_in1, irreps_in2, irreps_out, shared_weights=False, internal_weights=False)
    check_backend(backend)
    return CueTensorProduct(irreps_in1, irreps_in2, irreps_out)


def _output_mask(irreps_out: o3.Irreps, reached: set) -> torch.Tensor:
    """e3nn's ``output_mask`` buffer: 1 on output components some path writes to."""
    if not irreps_out.dim:
        return torch.ones(0)
    return torch.cat([torch.full((mul * ir.dim,), float(ir in reached)) for mul, ir in irreps_out])


class CueTensorProduct(nn.Module):
    """cuEquivariance fully connected TP (external per-edge weights), e3nn's state dict.

    e3nn's TP without internal weights holds an empty ``weight`` and an
    ``output_mask`` buffer; the same here keeps checkpoints interchangeable.
    """

    def __init__(self, irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, irreps_out: o3.Irreps) -> None:
        super().__init__()
        cue, cuet = _require()
        i1, i2, out = o3.Irreps(irreps_in1), o3.Irreps(irreps_in2), o3.Irreps(irreps_out)
        self.op = _constants_not_in_state_dict(cuet.FullyConnectedTensorProduct(
            _cue_irreps(cue, i1), _cue_irreps(cue, i2), _cue_irreps(cue, out),
            layout=cue.mul_ir, shared_weights=False, internal_weights=False, method=_method(),
        ))
        self.weight_numel = self.op.weight_numel
        self.register_buffer("weight", torch.Tensor())
        reached = {ir for _, a in i1 for _, b in i2 for ir in a * b}
        self.register_buffer("output_mask", _output_mask(out, reached))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x1, x2, weight = _same_dtype(x1, x2, weight)
        return self.op(x1, x2, weight)


class CueLinear(nn.Module):
    """cuEquivariance equivariant linear map with e3nn ``o3.Linear``'s state dict.

    e3nn keeps ``weight`` [n], an empty ``bias`` and an ``output_mask`` buffer; the
    same names and shapes here let an e3nn checkpoint load unchanged.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> None:
        super().__init__()
        cue, cuet = _require()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.op = _constants_not_in_state_dict(cuet.Linear(
            _cue_irreps(cue, self.irreps_in), _cue_irreps(cue, self.irreps_out), layout=cue.mul_ir,
            shared_weights=True, internal_weights=False, method="naive",
        ))
        self.weight = nn.Parameter(torch.randn(self.op.weight_numel))
        self.register_buffer("bias", torch.Tensor())
        self.register_buffer("output_mask", _output_mask(self.irreps_out, {ir for _, ir in self.irreps_in}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, weight = _same_dtype(x, self.weight.unsqueeze(0))
        return self.op(x, weight=weight)


def linear(backend: str, irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> nn.Module:
    """Equivariant linear layer (no bias), state-dict compatible across backends."""
    if backend == "e3nn":
        return o3.Linear(irreps_in, irreps_out)
    check_backend(backend)
    return CueLinear(irreps_in, irreps_out)


def _is_constant(key: str) -> bool:
    return "._compiled_main" in key  # e3nn codegen's Wigner-3j buffers


def constants_from_model(module: nn.Module, state_dict: dict, prefix: str, *_args) -> None:
    """load_state_dict pre-hook: the receiving model's own constant tables win.

    Registered on the whole model, so a checkpoint written by either backend
    loads into either, strictly for every real weight.
    """
    own = module.state_dict()
    for key in [k for k in state_dict if k.startswith(prefix) and _is_constant(k)]:
        if key[len(prefix):] not in own:
            del state_dict[key]
    for key, value in own.items():
        if _is_constant(key) and prefix + key not in state_dict:
            state_dict[prefix + key] = value
