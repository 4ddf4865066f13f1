"""The safety critic: TD target, tiny training on real sim data, calibration, checkpoint,
export of the selection graph (torch vs onnxruntime) and the Hydra app's schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.export.app import main as spine_export
from deploy.export.critic import export_critic
from policies.critic import (
    N_FIXED,
    CriticConfig,
    TwinRiskCritic,
    load_critic_checkpoint,
    predict_risk,
    save_critic,
    train_critic,
)
from policies.critic_app import CriticTrainConfig, run
from policies.critic_data import ADVERSARIES, CriticData, CriticDataConfig, collect_critic_data
from policies.critic_report import calibration

torch.set_num_threads(1)
TINY_DATA = CriticDataConfig(episodes=10, episode_steps=40, segment_min=5, segment_max=20, seed=0)
TINY_CRITIC = CriticConfig(hidden=32, steps=300, samples=4)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("critic")
    run(CriticTrainConfig(out=str(out), data=TINY_DATA, critic=TINY_CRITIC), progress=False)
    assert spine_export([str(out / "checkpoint"), "--out", str(out)]) == 0  # critic.onnx alone
    return out


def test_data_covers_violations_and_labels_the_horizon() -> None:
    data = collect_critic_data("reach_obstacles", CriticDataConfig(episodes=6, episode_steps=30, seed=3))
    assert len(data) == 180 and data.obs.shape == (180, 35) and data.act.shape == (180, 7)
    assert set(np.unique(data.behavior)) - {0} <= set(range(1, len(ADVERSARIES) + 1))
    assert data.cost.max() == 1.0  # adversarial segments do violate
    label = data.violation_within(5)
    for i in np.flatnonzero(data.cost):
        ep = data.episode[i]
        before = [j for j in range(i - 4, i + 1) if j >= 0 and data.episode[j] == ep]
        assert np.all(label[before] == 1.0)
    nxt = np.flatnonzero(data.episode[1:] == data.episode[:-1])
    np.testing.assert_array_equal(data.next_act[nxt], data.act[nxt + 1])


def test_td_target_propagates_risk_backwards_through_a_chain() -> None:
    """A 3-step chain s0 -> s1 -> s2 with the cost on the last step: Q ~ gamma^2, gamma, 1."""
    from sim import make

    spec = make("reach").task_spec
    d = spec.obs_size
    obs = np.zeros((3, d), np.float32)
    obs[:, 14] = [0.0, 1.0, 2.0]  # distinct states (an ee_pos coordinate)
    act = obs[:, :7].copy()
    data = CriticData(
        obs=obs,
        act=act,
        cost=np.array([0, 0, 1], np.float32),
        next_obs=np.roll(obs, -1, axis=0),
        next_act=np.roll(act, -1, axis=0),
        episode=np.zeros(3, np.int64),
        behavior=np.zeros(3, np.int64),
    )
    data.next_obs[2], data.next_act[2] = obs[2], act[2]
    cfg = CriticConfig(hidden=32, gamma=0.5, steps=600, batch_size=3, lr=5e-3, tau=0.1)
    torch.manual_seed(0)
    critic = TwinRiskCritic(spec, cfg)
    train_critic(critic, data, progress=False)
    risk = predict_risk(critic.eval(), obs, act)
    np.testing.assert_allclose(risk, [0.25, 0.5, 1.0], atol=0.08)


def test_calibration_table_of_a_perfect_and_a_useless_predictor() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, p.size) < p).astype(float)
    good = calibration(p, y)
    assert good["ece"] < 0.02 and good["auc"] > 0.7
    flat = calibration(np.full(p.size, 0.9), y)
    assert flat["ece"] > 0.3 and flat["auc"] == pytest.approx(0.5, abs=0.01)


def test_app_writes_checkpoint_calibration_and_onnx(tiny_run: Path) -> None:
    """spine-train-critic writes the checkpoint; spine-export turns it into critic.onnx."""
    report = json.loads((tiny_run / "report.json").read_text())
    report["export"] = json.loads((tiny_run / "critic_report.json").read_text())
    for f in (
        "checkpoint/critic.safetensors",
        "checkpoint/critic.json",
        "checkpoint/calibration.png",
        "checkpoint/calibration.json",
        "critic.onnx",
        "data.npz",
    ):
        assert (tiny_run / f).is_file(), f
    assert report["transitions"] == 400 and 0 < report["violation_rate"] < 1
    assert report["export"]["parity"]["max_abs_risk_error"] <= 1e-4
    assert report["export"]["candidates"] == N_FIXED + TINY_CRITIC.samples
    table = json.loads((tiny_run / "checkpoint/calibration.json").read_text())
    assert sum(b["count"] for b in table["bins"]) == table["samples"] > 0


def test_checkpoint_round_trip_and_clear_errors(tiny_run: Path, tmp_path: Path) -> None:
    critic, meta = load_critic_checkpoint(tiny_run / "checkpoint")
    assert meta["config"]["hidden"] == 32 and float(critic.fitted) == 1.0
    bad = tmp_path / "bad"
    save_critic(bad, critic, {})
    text = json.loads((bad / "critic.json").read_text())
    text["config"]["hiden"] = 3
    (bad / "critic.json").write_text(json.dumps(text))
    with pytest.raises(ValueError, match="hiden"):
        load_critic_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match=r"missing critic\.json"):
        load_critic_checkpoint(tmp_path)


def test_export_refuses_an_unfitted_normalizer(tmp_path: Path) -> None:
    from sim import make

    save_critic(tmp_path / "ck", TwinRiskCritic(make("reach").task_spec, TINY_CRITIC), {})
    with pytest.raises(ValueError, match="normalizer"):
        export_critic(tmp_path / "ck", tmp_path / "critic.onnx")


def test_hydra_schema_names_a_misspelt_field() -> None:
    from hydra import compose, initialize_config_module

    import policies.critic_app  # noqa: F401  (registers the schema)

    with initialize_config_module(version_base=None, config_module="configs"):
        cfg = compose("critic", overrides=["data.episodes=7", "critic.hidden=16"])
        assert cfg.data.episodes == 7 and cfg.critic.hidden == 16
        with pytest.raises(Exception, match="hiden"):
            compose("critic", overrides=["critic.hiden=16"])


@pytest.mark.parametrize("margin", [0.0, 0.0005])  # (risks of an untrained critic differ by ~1e-3)
def test_selection_graph_matches_the_torch_reference_with_three_layers(margin: float) -> None:
    """The hand-written graph (twins side by side, normalizer folded, switch margin) equals
    CriticSelector."""
    import onnxruntime as ort

    import sim
    from deploy.export.critic import CriticSelector, recovery_offsets
    from deploy.export.critic_graph import build_selection_graph

    torch.manual_seed(1)
    spec = sim.make("reach_obstacles").task_spec
    critic = TwinRiskCritic(spec, CriticConfig(hidden=16, layers=3, samples=6)).eval()
    rng = np.random.default_rng(1)
    critic.obs_mean.copy_(torch.as_tensor(rng.normal(0, 0.3, spec.obs_size), dtype=torch.float32))
    critic.obs_std.copy_(torch.as_tensor(rng.uniform(0.1, 2.0, spec.obs_size), dtype=torch.float32))
    offsets = recovery_offsets(spec, critic.config)
    ref = CriticSelector(critic, offsets, margin).eval()
    sess = ort.InferenceSession(
        build_selection_graph(critic, offsets, switch_margin=margin).SerializeToString()
    )
    i, n = critic.q_index, spec.n_joints
    choices = set()
    for _ in range(40):
        obs = rng.normal(0, 1, (1, spec.obs_size)).astype(np.float32)
        q = obs[:, i : i + n]
        act = (q + rng.normal(0, 8, q.shape) * np.asarray(spec.action.max_delta)).astype(np.float32)
        hold = q + np.float32(0.01)
        with torch.no_grad():  # a threshold among this state's risks: the selection has work to do
            risk = ref(*(torch.as_tensor(x) for x in (obs, act, hold, np.ones(1, np.float32))))[1].numpy()
        t = np.array([rng.uniform(risk.min() - 0.03, risk.max() + 0.03)], np.float32)
        with torch.no_grad():
            want = [x.numpy() for x in ref(*(torch.as_tensor(x) for x in (obs, act, hold, t)))]
        got = sess.run(None, {"observation": obs, "anchors": np.concatenate([act, hold, q]), "threshold": t})
        np.testing.assert_allclose(got[1], want[1], atol=1e-5)
        assert got[2][0] == want[2][0]
        np.testing.assert_allclose(got[0], want[0], atol=1e-6)
        choices.add(int(got[2][0]))
    assert len(choices) > 1  # the threshold sweep exercises the selection, not one fixed answer


def test_same_seed_same_critic(tiny_run: Path, tmp_path: Path) -> None:
    """The seed covers the networks' initial weights: a second run on the same data is identical."""
    run(
        CriticTrainConfig(out=str(tmp_path), dataset=str(tiny_run / "data.npz"), critic=TINY_CRITIC),
        progress=False,
    )
    first, _ = load_critic_checkpoint(tiny_run / "checkpoint")
    again, _ = load_critic_checkpoint(tmp_path / "checkpoint")
    for (name, a), b in zip(first.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
