"""One-step student of a diffusion policy: noise -> chunk in a single network call.

The teacher (a trained ``diffusion`` checkpoint) defines a deterministic map from a noise
``z ~ N(0, I)`` to a chunk: its multi-step ODE solve from ``tau z`` (its temperature ``tau``
and guidance included). The student regresses that map directly,
``min || D_s(sigma_max z; sigma_max) - ODE_teacher(tau z) ||^2``, over a pool of dataset
states and noises solved once at setup, so one evaluation of the student at ``sigma_max``
(a one-step Euler solve) reproduces the teacher's sample for the same noise. Because the
target depends on ``z``, distinct noises keep landing on distinct modes (a plain regression
on data would give their mean). This is direct distillation of the ODE (Luhman & Luhman
2021); consistency distillation would be the next step up.

The student is a ``DiffusionPolicy`` (chunks, receding-horizon execution, checkpoints and
export are shared); only its network, its training and its one-step sampler differ. By default
its network is a plain LayerNorm/GELU MLP (``policies.student_net.StudentMLP``, 384x3, trained
from scratch on a 0.5M pool, no mean head: the pool's targets already are the teacher's full
normalized chunks). With ``net="denoiser"`` it has the teacher's architecture instead and can
start from the teacher's weights (``init_from_teacher=true``).

    spine-train task=push policy=diffusion_student policy.teacher=runs/diff/checkpoint steps=60000 ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from policies.checkpoint import load_checkpoint
from policies.dataset import TrajectoryDataset
from policies.diffusion import DiffusionConfig, DiffusionPolicy, Solver
from policies.family import TrainContext
from policies.registry import register_policy
from policies.samplers import SAMPLERS, karras_sigmas
from policies.student_net import StudentMLP
from policies.student_twin import StudentMLPTwin, mlp_student_applies
from sim.spec import TaskSpec

# Fields the student must share with its teacher (what the chunk means and the noise scale);
# the width and depth may differ when the student starts from scratch (init_from_teacher=false).
SHARED_FIELDS = ("chunk_length", "sigma_data", "sigma_max", "mean_head")
SIZE_FIELDS = ("hidden", "layers")
NETS = ("denoiser", "mlp")  # the teacher's ChunkDenoiser (+ mean head), or a plain StudentMLP


@dataclass
class StudentConfig(DiffusionConfig):
    """One-step student: the diffusion fields (network must match the teacher) plus the teacher."""

    sampler: str = "euler"  # one Euler step from sigma_max: a single network call
    sampler_steps: int = 1  # must stay 1: the student is a one-step map
    noise_scale: float = 1.0  # must stay 1: the teacher's temperature is inside the map
    # Defaults: the plain-MLP student (384x3, int8 ~17 µs) trained from scratch on a 0.5M pool;
    # on push, 60k steps put it 2.7 points under its 3x256 teacher (benchmarks/RESULTS.md).
    # net="denoiser" copies the teacher instead: set init_from_teacher=true, hidden/layers to the
    # teacher's and lr=1e-4 (fine-tuning).
    hidden: int = 384  # width of the student's hidden layers
    lr: float = 1e-3  # AdamW learning rate
    teacher: str = ""  # checkpoint folder of a trained diffusion policy (spine-train out/checkpoint)
    teacher_sampler: str = "heun"  # sampler of the teacher's solve that the student imitates
    teacher_steps: int = 10  # steps of the teacher's solve
    teacher_guidance: float = 1.0  # CFG weight of the teacher's solve (distilled into the student)
    teacher_noise_scale: float = 0.25  # temperature of the teacher's solve (distilled into the student)
    init_from_teacher: bool = False  # start from the teacher's weights (else only its normalizers)
    pool_size: int = 524_288  # (state, noise, teacher chunk) triples solved once at setup
    net: str = "mlp"  # "mlp" (StudentMLP, no mean head) or "denoiser" (the teacher's architecture)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampler_steps != 1 or self.guidance != 1.0 or self.noise_scale != 1.0:
            raise ValueError(
                "StudentConfig: sampler_steps, guidance and noise_scale must be 1 (one-step map)"
            )
        if self.teacher_sampler not in SAMPLERS:
            raise ValueError(
                f"StudentConfig.teacher_sampler: {self.teacher_sampler!r} not in {sorted(SAMPLERS)}"
            )
        if self.teacher_steps < 1:
            raise ValueError("StudentConfig.teacher_steps must be >= 1")
        if self.net not in NETS:
            raise ValueError(f"StudentConfig.net: {self.net!r} is not one of {NETS}")
        if self.net == "mlp" and self.init_from_teacher:
            raise ValueError(
                "StudentConfig.init_from_teacher: must be false with net='mlp' "
                "(the MLP student has none of the teacher's layers to copy)"
            )


@register_policy("diffusion_student", config=StudentConfig)
class DistilledPolicy(DiffusionPolicy):
    """A diffusion policy whose chunk is one network call ``D(sigma_max noise; sigma_max)``."""

    family = "diffusion_student"

    def __init__(self, spec: TaskSpec, config: StudentConfig) -> None:
        super().__init__(spec, config)
        if config.net == "mlp":  # mean_head has no effect: the MLP regresses the full chunk
            h, j = config.chunk_length, spec.n_joints
            self.net = StudentMLP(
                h * j, spec.obs_size, spec.goal.size, config.hidden, config.layers, config.sigma_data
            )
            self.mean_net = None

    def setup_training(self, ctx: TrainContext) -> None:
        """Load the teacher, copy its normalizers (and weights), AdamW with a cosine schedule."""
        c = self.config
        if ctx.data is None:
            raise ValueError("diffusion_student trains offline: give it a dataset (spine-train dataset=...)")
        if not c.teacher:
            raise ValueError(
                "StudentConfig.teacher: give the teacher's checkpoint folder (policy.teacher=...)"
            )
        teacher, meta = load_checkpoint(Path(c.teacher))
        if meta["family"] != "diffusion":
            raise ValueError(f"StudentConfig.teacher: {c.teacher} holds a {meta['family']!r} policy")
        shared = [f for f in SHARED_FIELDS if c.net == "denoiser" or f != "mean_head"]  # mlp: no mean head
        for name in shared:
            mine, theirs = getattr(c, name), getattr(teacher.config, name)
            if mine != theirs:
                raise ValueError(f"StudentConfig.{name}={mine!r} differs from the teacher's {theirs!r}")
        if c.init_from_teacher:
            for name in SIZE_FIELDS:
                mine, theirs = getattr(c, name), getattr(teacher.config, name)
                if mine != theirs:
                    raise ValueError(
                        f"StudentConfig.{name}={mine!r} differs from the teacher's {theirs!r}: "
                        "a smaller student needs init_from_teacher=false"
                    )
            self.load_state_dict(teacher.state_dict())
        else:
            for norm in ("obs_norm", "goal_norm", "act_norm"):
                getattr(self, norm).load_state_dict(getattr(teacher, norm).state_dict())
        teacher.requires_grad_(False)
        sigmas = karras_sigmas(c.teacher_steps, teacher.config.sigma_min, c.sigma_max, teacher.config.rho)
        self._data, self._batch_size = TrajectoryDataset(ctx.data, ctx.seed), ctx.batch_size
        self._pool = self.solve_pool(
            teacher, Solver(c.teacher_sampler, sigmas, c.teacher_guidance, c.teacher_noise_scale)
        )
        self.setup_optimizer(self.parameters(), c.lr, c.weight_decay, ctx.total_steps, c.ema_decay)

    @torch.no_grad()
    def solve_pool(self, teacher: DiffusionPolicy, solver: Solver) -> dict[str, torch.Tensor]:
        """``pool_size`` dataset states with fresh noise ``(N, D)`` and the teacher's solve
        ``(N, D)`` from it, computed once (the teacher's many calls are the expensive part)."""
        data, n = self._data, self.config.pool_size
        assert data is not None
        idx = data.sample_indices(n)
        pool = {"observation": data.gather("observation", idx), "goal": data.gather("desired_goal", idx)}
        pool["noise"] = torch.randn(n, self.act_norm.mean.numel())
        parts = [
            teacher.sample_normalized(pool["observation"][i : i + 4096], pool["goal"][i : i + 4096],
                                      pool["noise"][i : i + 4096], solver)
            for i in range(0, n, 4096)
        ]  # fmt: skip
        pool["target"] = torch.cat(parts)
        return pool

    def sample_batch(self) -> dict[str, torch.Tensor]:
        """A uniform minibatch of the pool."""
        idx = torch.randint(len(self._pool["noise"]), (self._batch_size,))
        return {k: v[idx] for k, v in self._pool.items()}

    def with_noise(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The pool holds the noise already: nothing to draw."""
        return batch

    def loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """MSE between the student's one-step chunk and the teacher's solve from the same noise
        (normalized chunk units)."""
        one_step = self.sample_normalized(batch["observation"], batch["goal"], batch["noise"])
        loss = ((one_step - batch["target"]) ** 2).mean()
        return loss, {"loss": float(loss.detach())}

    def lean_twin(self) -> nn.Module | None:
        """The MLP student's ``StudentMLPTwin`` (``policies.student_twin``); a ``denoiser``
        student's is the teacher family's (``EulerChunkTwin``, one step)."""
        return StudentMLPTwin(self) if mlp_student_applies(self) else super().lean_twin()
