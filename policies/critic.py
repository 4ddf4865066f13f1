"""The safety critic: Q_risk(s, a), the probability of a constraint violation within a horizon.

Twin MLP critics trained by TD on the costs (Recovery RL, arXiv 2010.15920; Bresa, arXiv
2503.21989), pessimistic over the twins:

    target = c + (1 - c) * gamma * max(Q1'(s', a'), Q2'(s', a'))

with ``a'`` the next action in the data, ``Q'`` Polyak-averaged target networks, and a
binary cross-entropy loss (targets are probabilities). With ``gamma`` the horizon is about
``1 / (1 - gamma)`` control steps. The observation normalizer and the action scaling live
inside the module (buffers), so they are baked into the ONNX graph. The checkpoint (safetensors +
JSON) and the export twin (``CriticSelector``: candidates -> risks -> selection, the torch
reference ``deploy.export.critic`` checks the ONNX graph against) live here too.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from policies import distributed
from policies.checkpoint import weights_sha256
from policies.critic_data import CriticData
from sim.spec import JOINT_POS, TaskSpec, field_offset

DELTA_CLIP = 5.0  # action deltas beyond this many max_delta look the same to the critic
WEIGHTS, META = "critic.safetensors", "critic.json"  # a checkpoint folder's two files
N_FIXED = 5  # selection candidates besides the sampled ones: policy, half, quarter, hold, stop


@dataclass
class CriticConfig:
    """Network and TD settings of the safety critic."""

    hidden: int = 64  # units per hidden layer (64: ~10 us per 13-candidate call on one core)
    layers: int = 2  # hidden layers
    gamma: float = 0.9  # risk discount per control step (horizon ~ 1 / (1 - gamma) steps)
    lr: float = 1e-3  # Adam learning rate
    tau: float = 0.02  # Polyak factor of the target networks per step
    batch_size: int = 256  # transitions per gradient step
    steps: int = 3000  # gradient steps
    threshold: float = 0.5  # risk above which the filter looks for a safer candidate
    # a candidate replaces the action only if its risk + this margin passes the threshold, or
    # (none passing) is below the action's: a critic that finds the whole state risky (out of
    # distribution) keeps the policy's action instead of stalling it (the deterministic
    # stages still run)
    switch_margin: float = 0.1
    samples: int = 8  # sampled recovery candidates in the exported selection graph
    # their spread, in action deltas (max_delta) around the position; at 1.0 a miscalibrated
    # critic random-walked the arm into an obstacle (1 of 20 nominal reach_obstacles episodes)
    sample_scale: float = 0.25


def mlp(n_in: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(hidden, 1))


class TwinRiskCritic(nn.Module):
    """``forward(obs (B, D), act (B, n)) -> logits (B, 2)``; ``risk`` is the pessimistic
    probability ``max(sigmoid)`` over the twins ``(B,)``."""

    def __init__(self, spec: TaskSpec, config: CriticConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        d, n = spec.obs_size, spec.n_joints
        self.q_index = field_offset(spec.observation, JOINT_POS)
        self.register_buffer("obs_mean", torch.zeros(d))
        self.register_buffer("obs_std", torch.ones(d))
        self.register_buffer("act_scale", torch.tensor(spec.action.max_delta, dtype=torch.float32))
        self.register_buffer("fitted", torch.zeros(()))
        self.q1 = mlp(d + n, config.hidden, config.layers)
        self.q2 = mlp(d + n, config.hidden, config.layers)

    def fit_normalizer(self, obs: np.ndarray) -> None:
        self.obs_mean.copy_(torch.as_tensor(obs.mean(0)))
        self.obs_std.copy_(torch.as_tensor(np.maximum(obs.std(0), 1e-3)))
        self.fitted.fill_(1.0)

    def features(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        q = obs[:, self.q_index : self.q_index + self.spec.n_joints]
        delta = torch.clamp((act - q) / self.act_scale, -DELTA_CLIP, DELTA_CLIP)
        return torch.cat([(obs - self.obs_mean) / self.obs_std, delta], dim=1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = self.features(obs, act)
        return torch.cat([self.q1(x), self.q2(x)], dim=1)

    def risk(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(obs, act)).amax(dim=1)


def train_critic(
    critic: TwinRiskCritic, data: CriticData, seed: int = 0, progress: bool = True
) -> list[dict[str, float]]:
    """TD training on ``data``; returns loss rows every 100 steps. Fits the normalizer first.

    Under torchrun (``policies.distributed``) ``cfg.batch_size`` is the global batch: every rank
    draws the same indices and trains on its slice, gradients averaged before each step."""
    from tqdm import tqdm

    cfg = critic.config
    torch.manual_seed(seed)
    critic.fit_normalizer(data.obs)
    target = copy.deepcopy(critic).requires_grad_(False)
    opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr)
    dist = distributed.current()
    dist.local_batch(cfg.batch_size, "critic.batch_size")
    dist.broadcast_module(critic)
    dist.attach([opt])
    t = {k: torch.as_tensor(v) for k, v in vars(data).items()}
    rng = np.random.default_rng(seed)
    log = []
    bce = nn.BCEWithLogitsLoss()
    for step in tqdm(range(cfg.steps), desc="critic", unit="step", disable=not progress, mininterval=2.0):
        idx = dist.shard(torch.as_tensor(rng.integers(0, len(data), cfg.batch_size)))
        obs, act, c = t["obs"][idx], t["act"][idx], t["cost"][idx]
        with torch.no_grad():
            nxt = torch.sigmoid(target(t["next_obs"][idx], t["next_act"][idx])).amax(dim=1)
            y = c + (1.0 - c) * cfg.gamma * nxt
        logits = critic(obs, act)
        loss = bce(logits[:, 0], y) + bce(logits[:, 1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p, tp in zip(critic.parameters(), target.parameters(), strict=True):
                tp.lerp_(p, cfg.tau)
        if step % 100 == 0 or step == cfg.steps - 1:
            row = {"loss": float(loss.detach()), "target_mean": float(y.mean())}
            log.append({"step": step, **dist.mean_metrics(row)})
    return log


@torch.no_grad()
def predict_risk(critic: TwinRiskCritic, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Pessimistic risk ``(N,)`` for numpy inputs, in chunks."""
    out = [
        critic.risk(torch.as_tensor(obs[i : i + 4096]), torch.as_tensor(act[i : i + 4096])).numpy()
        for i in range(0, len(obs), 4096)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def save_critic(directory: Path, critic: TwinRiskCritic, extra: dict[str, Any]) -> Path:
    """Write ``critic.safetensors`` + ``critic.json`` (spec, config, ``extra``) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in critic.state_dict().items()}, str(directory / WEIGHTS))
    meta = {
        "task": critic.spec.to_dict(),
        "config": dataclasses.asdict(critic.config),
        "weights_sha256": weights_sha256(critic),
        **extra,
    }
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return directory


def load_critic_checkpoint(directory: Path) -> tuple[TwinRiskCritic, dict[str, Any]]:
    """Rebuild a saved critic; errors name the file and the field. No code runs on load."""
    meta_path, weights_path = directory / META, directory / WEIGHTS
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"critic checkpoint {directory}: missing {p.name}")
    meta = json.loads(meta_path.read_text())
    for key in ("task", "config"):
        if key not in meta:
            raise ValueError(f"{meta_path}: missing field {key!r}")
    try:
        config = CriticConfig(**meta["config"])
    except TypeError as e:
        raise ValueError(f"{meta_path}: config does not fit CriticConfig: {e}") from None
    critic = TwinRiskCritic(TaskSpec.from_dict(meta["task"]), config)
    missing, unexpected = critic.load_state_dict(load_file(str(weights_path)), strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights_path}: missing tensors {missing}, unexpected {unexpected}")
    if meta.get("weights_sha256") and weights_sha256(critic) != meta["weights_sha256"]:
        raise ValueError(f"{weights_path}: weights hash differs from {meta_path}")
    return critic.eval(), meta


def recovery_offsets(spec: TaskSpec, config: CriticConfig, seed: int = 0) -> np.ndarray:
    """``(samples, n)`` fixed joint offsets (rad) of the sampled recovery candidates."""
    rng = np.random.default_rng(seed)
    scale = config.sample_scale * np.asarray(spec.action.max_delta)
    return (rng.uniform(-1.0, 1.0, (config.samples, spec.n_joints)) * scale).astype(np.float32)


class CriticSelector(nn.Module):
    """Export twin: candidates -> pessimistic risks -> selection, tensor-only."""

    def __init__(self, critic: TwinRiskCritic, offsets: np.ndarray, switch_margin: float = 0.0) -> None:
        super().__init__()
        self.critic = critic
        self.register_buffer("offsets", torch.as_tensor(offsets))
        margin = torch.full((len(offsets) + N_FIXED,), float(switch_margin))
        margin[0] = 0.0  # the action itself is judged at its own risk
        self.register_buffer("margin", margin)

    def forward(
        self, observation: torch.Tensor, action: torch.Tensor, hold: torch.Tensor, threshold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        i, n = self.critic.q_index, self.critic.spec.n_joints
        q = observation[:, i : i + n]
        step = action - q
        cands = torch.cat([action, q + 0.5 * step, q + 0.25 * step, hold, q, q + self.offsets], dim=0)
        obs = observation.expand(cands.shape[0], -1)
        risk = torch.sigmoid(self.critic(obs, cands)).amax(dim=1)
        judged = risk + self.margin
        ok = (judged <= threshold).to(torch.float32)
        first_ok = torch.argmax(ok, dim=0)
        idx = torch.where(ok.amax() > 0, first_ok, torch.argmin(judged, dim=0))
        chosen = torch.index_select(cands, 0, idx.reshape(1))
        return chosen, risk.reshape(1, -1), idx.reshape(1)
