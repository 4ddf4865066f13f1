"""A lean export twin for diffusion policies solved by Euler, DDIM or Heun without guidance.

The policy's own ``forward`` traces to ~30 onnxruntime nodes per denoiser call (concats of the
condition, the goal mixing of classifier-free guidance, the sampler's arithmetic); at ~0.3 µs
of dispatch per node and batch 1 that is a large share of the time. This twin computes the
same function with fewer nodes and fewer weight bytes, using that within one chunk only the
noisy chunk ``x`` changes and that everything else is affine in ``(observation, goal)``:

- **One Gemm for everything static.** The observation and goal normalizers, the goal
  embedding (a linear layer) and the condition columns of every layer that sees the
  condition ``[obs, goal_embedding, noise_embedding(sigma)]`` fold into one Gemm over the raw
  ``[observation, goal]``; the same Gemm also gives the mean head's first layer and the joint
  positions ``q`` (repeated per chunk step, plus the decode's constant offset). The
  ``noise_embedding(sigma_i)`` share is a constant per step (the sigmas are fixed): one
  broadcast Add, one Reshape and one Split make every step's layer biases at once.
- **Sampler in the Gemm scalars.** An Euler step ``x + (s1 - s0) (x - D(x)) / s0`` and a DDIM
  step are both ``x' = beta x + alpha f`` with ``D = c_skip x + c_out f`` (EDM), so each step's
  update is the output layer's Gemm with ``alpha``/``beta`` attributes and ``c_in`` is the input
  layer's ``alpha``; constant offsets are carried forward into the next step's constants. A
  Heun step is that Euler predictor ``xe``, then ``x' = x / 2 + B xe + C f(xe)``: one Gemm with
  the identity makes ``u = x / 2 + B xe`` and the corrector's output Gemm adds ``C f`` to it.
- **Decode folded.** ``q + clamp(std (x + mean_head) + mu, -bound, bound)`` becomes
  ``(q + k) + clamp(std v, -bound - k, bound - k)`` with every constant in ``k``: a Mul, a Max,
  a Min, an Add and the Reshape to ``(1, H, J)``.

Per denoiser call it has ``5 * blocks + 3`` onnxruntime nodes (3 blocks: 18; Heun: one more
per corrected step), plus 6 before the solve, ``3 * layers - 1`` for the mean head and 6 after
(5 without a mean head): ``lean_node_count``. The weights the solve reuses every step are stored ``(in, out)``
(Gemm ``transB = 0``): onnxruntime's dynamic quantizer transposes a ``transB`` weight once per
node that uses it, which breaks a weight shared by the unrolled steps. The export's parity check
compares it with the policy's own ``forward``; if it ever disagrees (a denoiser changed under
it), the export falls back to tracing ``forward`` itself (``DiffusionPolicy.graphs``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from policies.denoiser import ChunkDenoiser, edm_scalings

SAMPLERS = ("euler", "ddim", "heun")  # x' = beta x + alpha f per call; Heun: + one mix per step


def lean_twin_applies(policy: Any) -> bool:
    """Whether ``EulerChunkTwin`` computes this policy's ``forward``."""
    c, mean_net = policy.config, policy.mean_net
    hidden_mean = mean_net is None or len(mean_net) > 1  # a mean head with hidden layers, or none
    return (
        c.sampler in SAMPLERS and c.guidance == 1.0 and isinstance(policy.net, ChunkDenoiser) and hidden_mean
    )


def _folded_inputs(p: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affine maps of the raw ``u = [observation, goal]`` (float64): ``(A, c)`` with
    ``[obs_n, goal_embedding] = A u + c`` (the denoiser's static condition) and ``(N, m)`` with
    ``[obs_n, goal_n] = N u + m`` (the mean head's input)."""
    mo, so = p.obs_norm.mean.double(), p.obs_norm.std.double()
    mg, sg = p.goal_norm.mean.double(), p.goal_norm.std.double()
    emb_w, emb_b = p.net.goal_embed.weight.double(), p.net.goal_embed.bias.double()
    n_obs, n_goal = mo.numel(), mg.numel()
    a = torch.zeros(n_obs + emb_w.shape[0], n_obs + n_goal, dtype=torch.float64)
    a[:n_obs, :n_obs] = torch.diag(1.0 / so)
    a[n_obs:, n_obs:] = emb_w / sg
    c = torch.cat([-mo / so, emb_b - emb_w @ (mg / sg)])
    return a, c, torch.diag(torch.cat([1.0 / so, 1.0 / sg])), torch.cat([-mo / so, -mg / sg])


def lean_node_count(policy: Any) -> int:
    """Nodes onnxruntime runs for ``EulerChunkTwin(policy)`` (after its Gelu fusion)."""
    c, blocks = policy.config, len(policy.net.blocks)
    mean = 0 if policy.mean_net is None else 3 * c.layers
    mixes = c.sampler_steps - 1 if c.sampler == "heun" else 0
    return (c.sampler_steps + mixes) * (5 * blocks + 3) + mixes + 6 + mean + 5


class EulerChunkTwin(nn.Module):
    """``(observation (1, obs), goal (1, g), noise (1, H, J)) -> joint_target (1, H, J)``."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        p = copy.deepcopy(policy).eval()
        net: ChunkDenoiser = p.net
        self.blocks, self.out_norm = net.blocks, net.out_norm
        # the mean head between its first and last Linear (LN, GELU, ...): both ends are folded
        self.mean_hidden = None if p.mean_net is None else p.mean_net[1:-1]
        self.n_mean = 0 if p.mean_net is None else p.mean_net[0].out_features
        self.chunk_shape = tuple(p.delta_bound.shape)
        dim, hidden = net.out.out_features, net.out.in_features
        with torch.no_grad():
            a, c, norm, norm_c = _folded_inputs(p)
            layers = [net.inp, *(b.fc1 for b in net.blocks)]
            skip = [dim] + [hidden] * len(net.blocks)  # leading input columns that are not condition
            w = [lin.weight.double() for lin in layers]
            cond_w = [wi[:, k : k + a.shape[0]] for wi, k in zip(w, skip, strict=True)]
            noise_w = [wi[:, k + a.shape[0] :] for wi, k in zip(w, skip, strict=True)]
            steps, offset = self._steps(p, net, noise_w, w[0][:, :dim])
            # static Gemm rows: the input layer and each fc1 (condition columns), the mean head's
            # first layer, then q repeated per chunk step (+ the decode constant k)
            rows = [cw @ a for cw in cond_w]
            bias = [cw @ c + lin.bias.double() for cw, lin in zip(cond_w, layers, strict=True)]
            self.piece = [len(b) for b in bias]  # per-step bias widths
            if p.mean_net is not None:
                m0, m_last = p.mean_net[0], p.mean_net[-1]
                rows.append(m0.weight.double() @ norm)
                bias.append(m0.weight.double() @ norm_c + m0.bias.double())
                self.register_buffer("w_mean", m_last.weight.detach().t().contiguous().float())
                offset = offset + m_last.bias.double()
            q_rows = a.new_zeros(dim, a.shape[1])
            q_rows[torch.arange(dim), p.q_start + torch.arange(dim) % self.chunk_shape[1]] = 1.0
            std, k = p.act_norm.std.double(), p.act_norm.std.double() * offset + p.act_norm.mean.double()
            rows.append(q_rows)
            bias.append(k)
            bound = p.delta_bound.double().flatten()
            self.register_buffer("static_w", torch.cat(rows).float())
            self.register_buffer("static_b", torch.cat(bias).float())
            self.register_buffer("std", std.float())
            self.register_buffer("lo", (-bound - k).float())
            self.register_buffer("hi", (bound - k).float())
            # (calls, R): denoiser call i's noise-embedding share of every layer's bias, 0 elsewhere
            step_bias = torch.zeros(len(steps), self.static_w.shape[0], dtype=torch.float64)
            step_bias[:, : sum(self.piece)] = torch.stack([s.pop("bias") for s in steps])
            self.register_buffer("step_bias", step_bias.float())
            if p.config.sampler == "heun":  # Heun's mix of two states: one Gemm with the identity
                self.register_buffer("eye", torch.eye(dim))
            self.register_buffer("w_x", w[0][:, :dim].t().contiguous().float())
            self.register_buffer("w_out", net.out.weight.detach().t().contiguous().float())
            for j, block in enumerate(net.blocks):  # fc1's hidden-state columns; fc2
                self.register_buffer(f"w1_{j}", block.fc1.weight.detach()[:, :hidden].t().contiguous())
                self.register_buffer(f"w2_{j}", block.fc2.weight.detach().t().contiguous())
                self.register_buffer(f"b2_{j}", block.fc2.bias.detach().clone())
        self.steps = steps
        self.extra = self.static_w.shape[0] - sum(self.piece)  # mean head + q columns

    def _steps(
        self, p: Any, net: ChunkDenoiser, noise_w: list[torch.Tensor], w_x: torch.Tensor
    ) -> tuple[list[dict], torch.Tensor]:
        """One entry per denoiser call (float64 constants): the layers' noise-embedding biases
        plus the call input's offset share of the input layer, ``in_alpha``, and the output
        Gemm's ``alpha``/``beta``; ``kind`` says what the output Gemm makes: ``step`` (the next
        state ``x``, Euler/DDIM or Heun's last step), ``predict`` (Heun's Euler predictor ``xe``,
        then ``u = A x + B xe`` by one Gemm with the identity: ``mix_alpha``, ``mix_beta``) or
        ``correct`` (the next ``x = u + C f``). Returns the entries and the offset left after
        the last call. Every tensor stands for ``true = scale * tensor + offset``; only the
        noise (the first state) has ``scale != 1``."""
        sigmas = p.sigmas.double().tolist()
        scale = float(p.config.noise_scale) * sigmas[0]
        heun, last = p.config.sampler == "heun", len(sigmas) - 2
        offset = torch.zeros(w_x.shape[1], dtype=torch.float64)  # of x
        b_out = net.out.bias.detach().double()

        def call(sigma: float, in_scale: float, in_offset: torch.Tensor) -> dict:
            c_skip, c_out, c_in, c_noise = (
                float(v) for v in edm_scalings(torch.tensor(sigma, dtype=torch.float64), net.sigma_data)
            )
            emb = net.noise_embed(torch.tensor([c_noise], dtype=torch.float32)).double()[0]
            bias = [nw @ emb for nw in noise_w]
            bias[0] = bias[0] + c_in * (w_x @ in_offset)
            return {"bias": torch.cat(bias), "in_alpha": c_in * in_scale, "c_skip": c_skip, "c_out": c_out}

        calls = []
        for i in range(len(sigmas) - 1):
            s0, s1 = sigmas[i], sigmas[i + 1]
            h = s1 - s0
            first = call(s0, scale, offset)  # D0 = c_skip x + c_out f: x + h (x - D0) / s0
            alpha, beta = -h * first["c_out"] / s0, 1.0 + h * (1.0 - first["c_skip"]) / s0
            first.update(alpha=alpha, beta=beta * scale, kind="step")
            calls.append(first)
            x_offset, offset = offset, beta * offset + alpha * b_out
            if heun and i < last:  # x' = x/2 + xe/2 + (h/2) d(xe), with xe (offset) the Euler predictor
                first["kind"] = "predict"
                second = call(s1, 1.0, offset)
                mix_b = 0.5 + 0.5 * h * (1.0 - second["c_skip"]) / s1
                first.update(mix_alpha=0.5 * scale, mix_beta=mix_b)
                c = -0.5 * h * second["c_out"] / s1
                second.update(alpha=c, beta=1.0, kind="correct")
                calls.append(second)
                offset = 0.5 * x_offset + mix_b * offset + c * b_out
            scale = 1.0
        for c in calls:
            del c["c_skip"], c["c_out"]
        return calls, offset

    def forward(self, observation: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        static = F.linear(torch.cat([observation, goal], dim=-1), self.static_w, self.static_b)  # (1, R)
        # every step's layer biases at once: (1, R) + (steps, R) -> flat -> split; step 0's row
        # also holds the mean head's first layer and q + k, the later rows' tails are unused
        n, mean = len(self.piece), [self.n_mean] if self.n_mean else []
        sizes = [
            *self.piece,
            *mean,
            self.extra - self.n_mean,
            *[*self.piece, self.extra] * (len(self.steps) - 1),
        ]
        parts = (static + self.step_bias).reshape(1, -1).split(sizes, dim=-1)
        starts = [0] + [n + len(mean) + 1 + i * (n + 1) for i in range(len(self.steps) - 1)]
        x = xe = u = noise.flatten(1)
        for s, first in zip(self.steps, starts, strict=True):
            bias = parts[first : first + n]
            h = torch.addmm(bias[0], xe if s["kind"] == "correct" else x, self.w_x, alpha=s["in_alpha"])
            for j, block in enumerate(self.blocks):
                a = torch.addmm(bias[j + 1], block.norm(h), getattr(self, f"w1_{j}"))
                h = torch.addmm(h, F.gelu(a), getattr(self, f"w2_{j}")) + getattr(self, f"b2_{j}")
            out = torch.addmm(u if s["kind"] == "correct" else x, self.out_norm(h), self.w_out,
                              beta=s["beta"], alpha=s["alpha"])  # fmt: skip
            if s["kind"] == "predict":
                xe, u = out, torch.addmm(out, x, self.eye, beta=s["mix_beta"], alpha=s["mix_alpha"])
            else:
                x = out
        if self.mean_hidden is not None:
            x = torch.addmm(x, self.mean_hidden(parts[n]), self.w_mean)
        delta = torch.minimum(torch.maximum(x * self.std, self.lo), self.hi)
        return (delta + parts[n + len(mean)]).reshape(1, *self.chunk_shape)
