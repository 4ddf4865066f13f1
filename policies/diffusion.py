"""Goal-conditioned diffusion policy over action chunks (Diffusion Policy, BESO/EDM-style).

Action representation. A chunk is the next ``H = chunk_length`` absolute joint-position targets
``a_t .. a_{t+H-1}`` (rad), taken from the dataset's ``labels`` array: by default the
expert's own targets (``expert_action``), not the executed ones, so that the exploration
noise a dataset was collected with (``action_noise``, DART-style state coverage) is not
learned as part of the action distribution. The model works on their offsets from the joint positions
``q_t`` measured when the chunk is planned, ``delta_h = a_{t+h} - q_t``, standardized per
(step, joint) by ``act_norm`` (a buffer fitted on the dataset's chunks). Decoding clamps
``|delta_h| <= (h + 1) * max_delta`` and returns ``q_t + delta`` in rad. Every target of a
chunk stays relative to ``q_t``, the state at planning time: an open-loop plan.

Mean head (``mean_head``). A regression MLP predicts the conditional mean chunk ``mu(s, g)``
(plain MSE, as GCBC but for the whole chunk) and the diffusion model generates the residual
``x0 - mu``: precise where the data is unimodal (the residual is ~0 there), and the modes
where it is not. ``sigma_data`` is then the residual's scale.

Training is EDM denoising (Karras et al. 2022): noise levels drawn log-normal or log-uniform,
loss weighted by ``(sigma^2 + sd^2) / (sigma sd)^2``, the goal replaced by a learned null
embedding with probability ``goal_dropout``. Sampling solves the probability-flow ODE with a
fixed-step sampler from ``policies.samplers`` from ``noise_scale * noise`` (a temperature:
< 1 trades diversity for precision), with classifier-free guidance on the residual,
``D = D_null + w (D_goal - D_null)``: ``w = 1`` is plain goal conditioning (one network
call per step), ``w = 0`` leaves the goal out of the residual, ``w > 1`` sharpens it.

Receding horizon: the shipped executor (``sim.execution.ChunkPolicy``, run over ``forward`` in
training and evaluation, over ONNX on a robot) plans a chunk from seeded numpy noise when its
queue is empty and executes its first ``execute_steps`` targets, one per tick (``graphs()``).
``forward(observation, goal, noise)`` is the whole tensor-only solve; its lean export twin,
where one applies, is ``policies.diffusion_twin.EulerChunkTwin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

from policies import distributed
from policies.chunk_unet import ChunkUNet
from policies.dataset import GoalMix, TrajectoryDataset
from policies.denoiser import ChunkDenoiser
from policies.diffusion_twin import EulerChunkTwin, lean_twin_applies
from policies.family import TrainContext
from policies.goal_io import goal_inputs
from policies.graphs import POLICY, PolicyGraph, Twin, as_stats, norm_stats, unit_stats
from policies.networks import mlp
from policies.normalizer import Normalizer
from policies.optim import AdamWCosine
from policies.registry import register_policy
from policies.samplers import SAMPLERS, Denoiser, get_sampler, karras_sigmas
from policies.torch_graph import GraphActing
from policies.twins import plain_twin
from sim.contract import TensorSpec
from sim.spec import JOINT_POS, TaskSpec, field_offset

SIGMA_SAMPLING = ("lognormal", "loguniform")
DENOISERS = ("mlp", "unet")
LABEL_KEYS = ("expert_action", "action")  # the expert's clean targets, or the executed (noisy) ones


class Solver(NamedTuple):
    """How a chunk is solved: sampler name, sigma schedule ``(steps + 1,)``, CFG weight, and
    the temperature that scales the standard-normal noise."""

    sampler: str
    sigmas: torch.Tensor
    guidance: float
    noise_scale: float


@dataclass
class DiffusionConfig:
    """Diffusion-policy hyper-parameters (network, noise, sampler, execution)."""

    chunk_length: int = 8  # H: joint-target steps per predicted chunk (push: 8 -> 71 %, 16 -> 45 %)
    execute_steps: int = 4  # targets of each chunk executed before re-planning (<= chunk_length)
    hidden: int = 256  # width of the denoiser's residual trunk and of the mean head
    layers: int = 3  # residual blocks of the denoiser (and hidden layers of the mean head)
    mean_head: bool = True  # diffuse the residual around a regressed mean chunk (docstring)
    lr: float = 1e-3  # AdamW learning rate (cosine-annealed to 0 over the run)
    weight_decay: float = 1e-4  # AdamW weight decay
    ema_decay: float = 0.0  # moving average of the weights that is evaluated and saved (0: none)
    sigma_data: float = 0.5  # std of the clean data the denoiser sees (chunk or residual)
    sigma_min: float = 0.002  # smallest noise level of the sampling schedule
    sigma_max: float = 20.0  # largest noise level: sampling starts from N(0, sigma_max^2)
    rho: float = 7.0  # curvature of the Karras sampling schedule
    sigma_sampling: str = "lognormal"  # training noise levels: "lognormal" or "loguniform"
    p_mean: float = -0.4  # lognormal: mean of ln(sigma)
    p_std: float = 1.4  # lognormal: std of ln(sigma)
    sampler: str = "heun"  # "euler", "heun" or "ddim" (policies/samplers.py)
    sampler_steps: int = 5  # ODE steps per chunk (heun: 2 * steps - 1 network calls)
    guidance: float = 1.0  # classifier-free guidance weight w (1: plain conditioning)
    noise_scale: float = 0.25  # temperature: the solve starts from noise_scale * noise
    goal_dropout: float = 0.1  # training probability of replacing the goal by the null goal
    hindsight: float = 0.0  # training probability of a hindsight goal (a later achieved goal)
    labels: str = "expert_action"  # dataset array the chunks come from (LABEL_KEYS, docstring)
    denoiser: str = "mlp"  # "mlp": residual MLP over the flat chunk; "unet": 1D conv U-Net over steps
    unet_width: int = 64  # unet: channels at the finest level (doubled per coarser level)
    unet_levels: int = 2  # unet: resolutions (chunk_length divisible by 2 ** (levels - 1))
    unet_kernel: int = 5  # unet: convolution size along the chunk's steps (odd)
    # checkpoints written before the rename: ``chunk_length`` was ``horizon``
    RENAMED_FIELDS: ClassVar[dict[str, str]] = {"horizon": "chunk_length"}

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"DiffusionConfig.sampler: {self.sampler!r} is not one of {sorted(SAMPLERS)}")
        if self.sigma_sampling not in SIGMA_SAMPLING:
            raise ValueError(
                f"DiffusionConfig.sigma_sampling: {self.sigma_sampling!r} not in {SIGMA_SAMPLING}"
            )
        if not 1 <= self.execute_steps <= self.chunk_length:
            raise ValueError("DiffusionConfig.execute_steps must be in [1, chunk_length]")
        if self.sampler_steps < 1:
            raise ValueError("DiffusionConfig.sampler_steps must be >= 1")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError("DiffusionConfig.sigma_min/sigma_max: need 0 < sigma_min < sigma_max")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"DiffusionConfig.denoiser: {self.denoiser!r} is not one of {DENOISERS}")
        if self.labels not in LABEL_KEYS:
            raise ValueError(f"DiffusionConfig.labels: {self.labels!r} is not one of {LABEL_KEYS}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError("DiffusionConfig.ema_decay must be in [0, 1)")
        if self.noise_scale < 0:
            raise ValueError("DiffusionConfig.noise_scale must be >= 0")
        for name in ("goal_dropout", "hindsight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"DiffusionConfig.{name} must be in [0, 1]")


@register_policy("diffusion", config=DiffusionConfig)
class DiffusionPolicy(GraphActing, AdamWCosine, nn.Module):
    """``(observation (B, obs), goal (B, g), noise (B, H, J)) -> joint targets (B, H, J)`` rad."""

    family = "diffusion"

    def __init__(self, spec: TaskSpec, config: DiffusionConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        h, j = config.chunk_length, spec.n_joints
        self.obs_norm = Normalizer(spec.obs_size)
        self.goal_norm = Normalizer(spec.goal.size)
        self.act_norm = Normalizer(h * j)  # standardizes flat chunk offsets delta (rad)
        self.net: ChunkDenoiser | ChunkUNet = (
            ChunkUNet(
                h,
                j,
                spec.obs_size,
                spec.goal.size,
                config.unet_width,
                config.unet_levels,
                config.unet_kernel,
                config.sigma_data,
            )
            if config.denoiser == "unet"
            else ChunkDenoiser(
                h * j, spec.obs_size, spec.goal.size, config.hidden, config.layers, config.sigma_data
            )
        )
        self.mean_net = (
            mlp(spec.obs_size + spec.goal.size, config.hidden, config.layers, h * j)
            if config.mean_head
            else None
        )
        self.q_start = field_offset(spec.observation, JOINT_POS)
        steps_ahead = torch.arange(1, h + 1, dtype=torch.float32)[:, None]
        max_delta = torch.tensor(spec.action.max_delta, dtype=torch.float32)
        self.register_buffer("delta_bound", steps_ahead * max_delta)  # (H, J) rad
        sigmas = karras_sigmas(config.sampler_steps, config.sigma_min, config.sigma_max, config.rho)
        self.register_buffer("sigmas", sigmas, persistent=False)  # (steps + 1,)
        self._data: TrajectoryDataset | None = None
        self._batch_size = 0

    # ----- data -------------------------------------------------------------------------
    def _joint_pos(self, observation: torch.Tensor) -> torch.Tensor:
        return observation[..., self.q_start : self.q_start + self.spec.n_joints]

    def chunk_offsets(self, data: TrajectoryDataset, idx: np.ndarray) -> torch.Tensor:
        """``(B, H * J)`` offsets ``a_{t+h} - q_t`` (rad) of the chunks starting at ``idx``;
        past an episode's end the chunk repeats its last action."""
        chunk_idx, _ = data.chunk_indices(idx, self.config.chunk_length)
        q = self._joint_pos(data.gather("observation", idx))
        return (data.gather(self.config.labels, chunk_idx) - q[:, None, :]).flatten(1)

    def fit_normalizers(self, data: TrajectoryDataset) -> None:
        """Fit observation, goal and chunk-offset statistics on the whole dataset."""
        self.obs_norm.fit(data.tensor("observation"))
        self.goal_norm.fit(data.tensor("desired_goal"))
        self.act_norm.fit(self.chunk_offsets(data, np.arange(data.size)))

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """``observation (B, obs)``, ``goal (B, g)`` and normalized chunk ``x0 (B, H * J)``."""
        assert self._data is not None, "call setup_training first"
        data, b = self._data, self._batch_size
        idx = data.sample_indices(b)
        goal = data.gather("desired_goal", idx)
        if self.config.hindsight > 0:
            later = data.sample_goals(idx, GoalMix(current=0.0, future=1.0, discount=None))
            use = torch.as_tensor(data.rng.random(b) < self.config.hindsight)[:, None]
            goal = torch.where(use, data.gather("next_achieved_goal", later), goal)
        x0 = self.act_norm(self.chunk_offsets(data, idx))
        return {"observation": data.gather("observation", idx), "goal": goal, "x0": x0}

    # ----- training ---------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext) -> None:
        """Fit the normalizers; AdamW with a cosine schedule over ``ctx.total_steps``."""
        if ctx.data is None:
            raise ValueError(f"{self.family} trains offline: give it a dataset (spine-train dataset=...)")
        if self.config.labels not in ctx.data:
            raise ValueError(
                f"{self.family}: the dataset has no {self.config.labels!r} array "
                f"(it has {sorted(ctx.data)}); set policy.labels=action"
            )
        self._data, self._batch_size = TrajectoryDataset(ctx.data, ctx.seed), ctx.batch_size
        self.fit_normalizers(self._data)
        c = self.config
        self.setup_optimizer(self.parameters(), c.lr, c.weight_decay, ctx.total_steps, c.ema_decay)

    def update(self, step: int) -> dict[str, float]:
        """One AdamW step of the loss on a fresh batch."""
        loss, metrics = self.loss(distributed.current().shard(self.with_noise(self.sample_batch())))
        self.descend(loss)
        return metrics

    def train_sigmas(self, n: int) -> torch.Tensor:
        """``(n,)`` training noise levels."""
        c = self.config
        if c.sigma_sampling == "lognormal":
            return (c.p_mean + c.p_std * torch.randn(n)).exp()
        lo, hi = np.log(c.sigma_min), np.log(c.sigma_max)
        return (lo + (hi - lo) * torch.rand(n)).exp()

    def with_noise(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``batch`` plus the loss's random draws for all of it: noise levels ``sigma (B,)``,
        goal-dropout mask ``keep (B,)`` and unit noise ``eps`` like ``x0`` (drawn before a
        torchrun rank takes its slice, so N ranks use what one process would)."""
        b = batch["x0"].shape[0]
        sigma = self.train_sigmas(b)
        keep = (torch.rand(b) >= self.config.goal_dropout).float()
        return {**batch, "sigma": sigma, "keep": keep, "eps": torch.randn_like(batch["x0"])}

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """EDM's weighted denoising loss on normalized chunks ``batch["x0"] (B, D)``."""
        x0 = batch["x0"]
        sd = self.config.sigma_data
        if "sigma" not in batch:
            batch = self.with_noise(batch)
        sigma, keep, eps = batch["sigma"], batch["keep"], batch["eps"]
        obs, goal = self.obs_norm(batch["observation"]), self.goal_norm(batch["goal"])
        metrics = {}
        if self.mean_net is not None:
            mean = self.mean_net(torch.cat([obs, goal], dim=-1))
            mean_loss = ((mean - x0) ** 2).mean()
            x0, metrics["mean_loss"] = x0 - mean.detach(), float(mean_loss.detach())
        denoised = self.net(x0 + sigma[:, None] * eps, sigma, obs, goal, keep)
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
        loss = (weight[:, None] * (denoised - x0) ** 2).mean()
        metrics["loss"] = float(loss.detach())
        if self.mean_net is not None:
            loss = loss + mean_loss
        return loss, metrics

    # ----- sampling ---------------------------------------------------------------------
    def guided(self, obs: torch.Tensor, goal: torch.Tensor, guidance: float) -> Denoiser:
        """The denoiser ``(x (B, D), sigma) -> (B, D)`` with CFG weight ``guidance`` for
        normalized ``obs (B, obs)`` and ``goal (B, g)``."""
        ones = obs.new_ones(obs.shape[0])
        if guidance == 1.0:
            return lambda x, sigma: self.net(x, sigma, obs, goal, ones)
        obs2, goal2, keep2 = torch.cat([obs, obs]), torch.cat([goal, goal]), torch.cat([ones, 0 * ones])

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            with_goal, without = self.net(torch.cat([x, x]), sigma, obs2, goal2, keep2).chunk(2)
            return without + guidance * (with_goal - without)

        return denoise

    def sample_normalized(
        self,
        observation: torch.Tensor,
        goal: torch.Tensor,
        noise: torch.Tensor,
        solver: Solver | None = None,
    ) -> torch.Tensor:
        """Normalized chunks ``(B, D)`` solved from standard-normal ``noise (B, D)`` with
        ``solver`` (default: the config's)."""
        c = self.config
        sampler, sigmas, guidance, scale = solver or Solver(c.sampler, self.sigmas, c.guidance, c.noise_scale)
        obs, goal = self.obs_norm(observation), self.goal_norm(goal)
        x = get_sampler(sampler)(self.guided(obs, goal, guidance), scale * noise, sigmas)
        return x if self.mean_net is None else x + self.mean_net(torch.cat([obs, goal], dim=-1))

    def decode(self, observation: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Normalized chunks ``x (B, D)`` -> absolute joint targets ``(B, H, J)`` (rad)."""
        delta = (x * self.act_norm.std + self.act_norm.mean).view(-1, *self.delta_bound.shape)
        delta = torch.minimum(torch.maximum(delta, -self.delta_bound), self.delta_bound)
        return self._joint_pos(observation)[:, None, :] + delta

    def forward(self, observation: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Joint-target chunks ``(B, H, J)`` (rad) from ``noise (B, H, J)`` ~ N(0, I)."""
        return self.decode(observation, self.sample_normalized(observation, goal, noise.flatten(1)))

    # ----- graphs and contract ---------------------------------------------------------
    def contract_fields(self) -> dict[str, int]:
        """Contract fields this family fills: chunk length and sampler steps."""
        return {"chunk_length": self.config.chunk_length, "sampler_steps": self.config.sampler_steps}

    def io_spec(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Graph inputs and outputs (batch of 1): the noise is an input, the chunk the output."""
        s, h = self.spec, self.config.chunk_length
        inputs = (
            *goal_inputs(s),
            TensorSpec("noise", (1, h, s.n_joints), description="standard normal, one draw per chunk"),
        )
        desc = f"absolute joint targets (rad) for the next {h} steps, relative to q at planning time"
        return inputs, (TensorSpec("joint_target", (1, h, s.n_joints), description=desc),)

    def graphs(self) -> tuple[PolicyGraph, ...]:
        """``forward``, a chunk every ``execute_steps`` ticks (receding horizon)."""
        inputs, outputs = self.io_spec()
        return (PolicyGraph(POLICY, inputs, outputs, self.forward, self._twin, self.config.execute_steps),)

    def _twin(self) -> Twin:
        """The lean twin where one computes ``forward`` (``lean_twin``), with ``forward`` traced
        as it is as its fallback; else ``forward`` traced. Normalizers inside either way."""
        plain = plain_twin(self)
        stats = {"observation": as_stats(*norm_stats(self.obs_norm, "obs_norm"))}
        stats["goal"] = as_stats(*norm_stats(self.goal_norm, "goal_norm"))
        stats["noise"] = unit_stats(self.io_spec()[0][2])
        lean = self.lean_twin()
        return Twin(plain, stats) if lean is None else Twin(lean, stats, plain)

    def lean_twin(self) -> nn.Module | None:
        """``EulerChunkTwin`` for Euler/DDIM/Heun without guidance (``lean_twin_applies``)."""
        return EulerChunkTwin(self) if lean_twin_applies(self) else None
