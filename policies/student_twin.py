"""A lean export twin for the one-step MLP student (``diffusion_student`` with ``net=mlp``).

The student's chunk is one evaluation of ``StudentMLP`` at ``sigma_max`` (its Euler step from
``x = sigma_max * noise``), then the decode:

    v = c_skip x + c_out mlp([c_in x, obs_n, goal_n])      (normalized chunk, EDM scalings)
    joint_target = q + clamp(std v + mu, -bound, bound)

Everything but the MLP's hidden layers is affine, so it folds into two Gemms:

- **First Gemm, raw inputs.** One Gemm over the raw ``[observation, goal, noise]`` gives the
  first hidden layer's pre-activation (the obs/goal normalizers and ``c_in sigma_max`` folded
  into its columns); a small Gemm over the observation gives ``q + k`` (the joint positions
  repeated per chunk step plus the decode's constant ``k``) and one Mul the skip term
  ``std c_skip sigma_max noise``. Both Gemms are fed by graph inputs, so ``deploy.export.quant``
  keeps them float32 (the raw features' ranges differ by orders of magnitude) and int8
  quantizes the rest. (Folding the skip and ``q`` rows into the first Gemm made it 40 % larger,
  mostly zeros: ~3 µs slower at 512 x 4, int8.)
- **Last Gemm, decode folded.** ``std c_out W_last`` is the output layer, with the skip term as
  its ``C``; the decode ``q + clamp(std v + mu, -bound, bound)`` becomes
  ``(q + k) + clamp(z, -bound - k, bound - k)`` with ``k = std c_out b_last + mu``: a Max, a Min,
  an Add and the Reshape to ``(1, H, J)``.

``4 x 512``: 21 onnxruntime nodes in float32 (Flatten, Concat, two Gemms, Mul, the hidden
LayerNorm/GELU/Gemm stack, the last Gemm, Max, Min, Add, Reshape), 22 in int8. The export's
parity check compares it with the policy's own ``forward``; if it ever disagrees, the export
falls back to tracing ``forward`` (``DistilledPolicy.lean_twin``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from policies.denoiser import edm_scalings
from policies.student_net import StudentMLP


def mlp_student_applies(policy: Any) -> bool:
    """Whether ``StudentMLPTwin`` computes this policy's ``forward``: a ``StudentMLP`` net solved
    in one step from unit-temperature noise without guidance (always so for a valid student)."""
    c = policy.config
    return (
        isinstance(policy.net, StudentMLP)
        and policy.mean_net is None
        and c.sampler_steps == 1
        and c.guidance == 1.0
        and c.noise_scale == 1.0
    )


class StudentMLPTwin(nn.Module):
    """``(observation (1, obs), goal (1, g), noise (1, H, J)) -> joint_target (1, H, J)`` (rad)."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        p = copy.deepcopy(policy).eval()
        net: StudentMLP = p.net
        first, last = net.mlp[0], net.mlp[-1]
        if not isinstance(first, nn.Linear) or not isinstance(last, nn.Linear):
            raise ValueError("StudentMLPTwin: the student's mlp must start and end with nn.Linear")
        self.hidden_layers = net.mlp[1:-1]  # LN, GELU, (Linear, LN, GELU) ...: traced as they are
        self.chunk_shape = tuple(p.delta_bound.shape)
        dim = net.dim
        sigma = float(p.sigmas[0])  # sigma_max: the one Euler step starts at sigma * noise
        c_skip, c_out, c_in, _ = (
            float(v) for v in edm_scalings(torch.tensor(sigma, dtype=torch.float64), net.sigma_data)
        )
        with torch.no_grad():
            mo, so = p.obs_norm.mean.double(), p.obs_norm.std.double()
            mg, sg = p.goal_norm.mean.double(), p.goal_norm.std.double()
            n_obs = mo.numel()
            w0, b0 = first.weight.double(), first.bias.double()  # columns [x, obs_n, goal_n]
            w_x, w_o, w_g = w0[:, :dim], w0[:, dim : dim + n_obs], w0[:, dim + n_obs :]
            hid = torch.cat([w_o / so, w_g / sg, w_x * (c_in * sigma)], dim=1)
            hid_b = b0 - w_o @ (mo / so) - w_g @ (mg / sg)
            std, mu = p.act_norm.std.double(), p.act_norm.mean.double()
            k = std * (c_out * last.bias.double()) + mu
            q_rows = torch.zeros(dim, n_obs, dtype=torch.float64)
            q_rows[torch.arange(dim), p.q_start + torch.arange(dim) % self.chunk_shape[1]] = 1.0
            bound = p.delta_bound.double().flatten()
            self.register_buffer("w_in", hid.float())
            self.register_buffer("b_in", hid_b.float())
            self.register_buffer("skip", (std * (c_skip * sigma)).float())
            self.register_buffer("w_q", q_rows.float())
            self.register_buffer("k", k.float())
            w_last = (std[:, None] * c_out) * last.weight.double()  # (D, hidden)
            self.register_buffer("w_last", w_last.t().contiguous().float())  # (hidden, D): Gemm transB=0
            self.register_buffer("lo", (-bound - k).float())
            self.register_buffer("hi", (bound - k).float())

    def forward(self, observation: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = noise.flatten(1)
        h = F.linear(torch.cat([observation, goal, x], dim=-1), self.w_in, self.b_in)
        q_k = F.linear(observation, self.w_q, self.k)  # q repeated per chunk step, + k
        z = torch.addmm(x * self.skip, self.hidden_layers(h), self.w_last)
        delta = torch.minimum(torch.maximum(z, self.lo), self.hi)
        return (delta + q_k).reshape(1, *self.chunk_shape)
