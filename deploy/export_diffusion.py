"""A leaner export twin for diffusion policies solved by Euler or DDIM without guidance.

The policy's own ``forward`` traces to ~30 onnxruntime nodes per denoiser call (concats of the
condition, the goal mixing of classifier-free guidance, the sampler's arithmetic); at ~0.25 µs
of dispatch per node and batch 1 that is a large share of the time. This twin computes the
same function with fewer nodes, using that within one chunk only the noisy chunk ``x`` changes:

- every layer that sees the condition ``[obs, goal_embedding, noise_embedding(sigma)]`` gets
  its ``[obs, goal_embedding]`` part from one Gemm per chunk; the ``noise_embedding(sigma_i)``
  part is a constant per step (sigma is fixed); one Tile, Add and Split make every step's
  layer biases at once;
- with guidance 1 the goal embedding is used as is (``1 * g + 0 * null = g``);
- an Euler step ``x + (s1 - s0) (x - D(x)) / s0`` and a DDIM step are both
  ``x' = beta x + alpha f`` with ``D = c_skip x + c_out f`` (EDM), so each step's update is the
  output layer's Gemm with ``alpha``/``beta`` attributes; constant offsets are carried forward
  and folded into the next step's constants.

Per step it has ``5 * layers + 3`` nodes. The export's parity check compares it with the
policy's own ``forward``; if it ever disagrees (a denoiser changed under it), the export falls
back to tracing ``forward`` itself. Torch is imported here: only the export runs this module.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from policies.denoiser import ChunkDenoiser, edm_scalings

SAMPLERS = ("euler", "ddim")  # both are x' = beta x + alpha f per step


def lean_twin_applies(policy: Any) -> bool:
    """Whether ``EulerChunkTwin`` computes this policy's ``forward``."""
    c = policy.config
    return c.sampler in SAMPLERS and c.guidance == 1.0 and isinstance(policy.net, ChunkDenoiser)


class EulerChunkTwin(nn.Module):
    """``(observation (1, obs), goal (1, g), noise (1, H, J)) -> joint_target (1, H, J)``."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        p = copy.deepcopy(policy).eval()
        net: ChunkDenoiser = p.net
        self.policy = p  # normalizers, mean head and decode are used as they are
        dim, hidden = net.out.out_features, net.out.in_features
        n_static = p.obs_norm.mean.numel() + net.goal_embed.out_features
        layers = [net.inp, *(b.fc1 for b in net.blocks)]
        skip = [dim] + [hidden] * len(net.blocks)  # leading input columns that are not condition
        with torch.no_grad():
            w = [lin.weight.detach().double() for lin in layers]
            self.register_buffer(
                "static_w",
                torch.cat([wi[:, k : k + n_static] for wi, k in zip(w, skip, strict=True)]).float(),
            )
            self.register_buffer("static_b", torch.cat([lin.bias.detach() for lin in layers]).float())
            noise_w = [wi[:, k + n_static :] for wi, k in zip(w, skip, strict=True)]
            self.register_buffer("w_x", w[0][:, :dim].float())
            self.register_buffer("w_out", net.out.weight.detach().float())
            for j, block in enumerate(net.blocks):  # the hidden-state columns of each fc1
                self.register_buffer(f"w_h{j}", block.fc1.weight.detach()[:, :hidden].clone())
            self.steps = self._steps(p, net, noise_w, w[0][:, :dim])
        self.hidden, self.n_layers = hidden, len(layers)

    def _steps(
        self, p: Any, net: ChunkDenoiser, noise_w: list[torch.Tensor], w_x: torch.Tensor
    ) -> list[dict]:
        """Per-step constants: the layers' noise-embedding biases (plus the carried offset's
        share of the input layer), the Gemm scalars, and the offset left after the last step."""
        sigmas = p.sigmas.double().tolist()
        scale = float(p.config.noise_scale) * sigmas[0]  # x_true = scale * x + offset
        offset = torch.zeros(w_x.shape[1], dtype=torch.float64)
        b_out = net.out.bias.detach().double()
        steps = []
        for i in range(len(sigmas) - 1):
            s0, s1 = sigmas[i], sigmas[i + 1]
            c_skip, c_out, c_in, c_noise = (
                float(v) for v in edm_scalings(torch.tensor(s0, dtype=torch.float64), net.sigma_data)
            )
            emb = net.noise_embed(torch.tensor([c_noise], dtype=torch.float32)).double()
            bias = [emb @ nw.T for nw in noise_w]
            bias[0] = bias[0] + c_in * (offset @ w_x.T)
            r = s1 / s0
            alpha, beta = (1.0 - r) * c_out, r + (1.0 - r) * c_skip
            steps.append({"bias": torch.cat(bias, -1).float(), "in_alpha": c_in * scale,
                          "alpha": alpha, "beta": beta * scale})  # fmt: skip
            offset = beta * offset + alpha * b_out
            scale = 1.0
        self.register_buffer("final_offset", offset.float())
        # (1, steps * layers * hidden): step i, layer j at columns (i * layers + j) * hidden
        self.register_buffer("step_bias", torch.cat([s.pop("bias") for s in steps], -1))
        return steps

    def forward(self, observation: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        p, net = self.policy, self.policy.net
        obs, goal_n = p.obs_norm(observation), p.goal_norm(goal)
        static = F.linear(torch.cat([obs, net.goal_embed(goal_n)], dim=-1), self.static_w, self.static_b)
        # every step's layer biases at once: one Tile, one Add, one Split for the whole solve
        biases = (static.repeat(1, len(self.steps)) + self.step_bias).split(self.hidden, dim=-1)
        x = noise.flatten(1)
        for i, s in enumerate(self.steps):
            bias = biases[i * self.n_layers : (i + 1) * self.n_layers]
            h = torch.addmm(bias[0], x, self.w_x.t(), alpha=s["in_alpha"])
            for j, block in enumerate(net.blocks):
                a = torch.addmm(bias[j + 1], block.norm(h), getattr(self, f"w_h{j}").t())
                h = h + block.fc2(F.gelu(a))
            x = torch.addmm(x, net.out_norm(h), self.w_out.t(), beta=s["beta"], alpha=s["alpha"])
        x = x + self.final_offset
        if p.mean_net is not None:
            x = x + p.mean_net(torch.cat([obs, goal_n], dim=-1))
        return p.decode(observation, x)
