"""The mapping network z (+ class) -> w, shared by StyleGAN2 and StyleGAN3.

Parameter names follow NVIDIA's state dicts (`fc{i}.weight|bias`, `embed.*`, `w_avg`) so checkpoints
load by name. Equalized learning rate (StyleGAN / ProGAN): weights are stored divided by the learning-rate
multiplier and scaled at run time by lr_multiplier / sqrt(fan_in); biases by lr_multiplier.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aigc_desktop.engines.stylegan.ops import bias_act, normalize_2nd_moment


class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float | list[float] = 0.0, weight_init: float = 1.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = torch.nn.Parameter(torch.from_numpy(init / lr_multiplier)) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class MappingNetwork(torch.nn.Module):
    """z [N, z_dim] and one-hot class c [N, c_dim] -> w broadcast to [N, num_ws, w_dim].

    Both inputs are normalised to unit second moment; c goes through `embed` first. `w_avg` tracks the
    mean w during training (update_emas) and is the centre of the truncation trick.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError("this generator is conditional: pass a class label")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: w_avg + psi * (w - w_avg), on the first `cutoff` layers (all when None)."""
    if ws.ndim == 2 or cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws
