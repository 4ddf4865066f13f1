"""Fixed-step ODE samplers against denoisers known in closed form."""

import pytest
import torch

from policies.samplers import SAMPLERS, ddim, denoiser_calls, euler, get_sampler, karras_sigmas

MU = torch.tensor([0.8, -0.5, 0.3])  # the modes of the toy data are +MU and -MU


def point_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact D for data that is the single point MU."""
    return MU.expand_as(x)


def two_mode_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact D for data that is +MU or -MU with equal probability: the posterior mean."""
    logits = torch.stack([-((x - MU) ** 2).sum(-1), -((x + MU) ** 2).sum(-1)], -1) / (2 * sigma**2)
    w = torch.softmax(logits, dim=-1)
    return (w[..., :1] - w[..., 1:]) * MU


def test_karras_schedule_is_decreasing_from_sigma_max_to_zero() -> None:
    s = karras_sigmas(6, 0.002, 20.0)
    assert s.shape == (7,) and s[-1] == 0.0
    assert torch.isclose(s[0], torch.tensor(20.0)) and torch.isclose(s[-2], torch.tensor(0.002))
    assert torch.all(s[1:] < s[:-1])
    assert torch.equal(karras_sigmas(1, 0.002, 20.0), torch.tensor([20.0, 0.0]))
    with pytest.raises(ValueError, match="steps"):
        karras_sigmas(0, 0.002, 20.0)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_a_single_point_is_reached_from_any_noise(name: str, steps: int) -> None:
    noise = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    out = get_sampler(name)(point_denoiser, noise, karras_sigmas(steps, 0.002, 20.0))
    torch.testing.assert_close(out, MU.expand(16, 3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_two_modes_each_noise_lands_on_one_mode_not_the_mean(name: str) -> None:
    noise = torch.randn(256, 3, generator=torch.Generator().manual_seed(1))
    out = get_sampler(name)(two_mode_denoiser, noise, karras_sigmas(10, 0.002, 20.0))
    side = torch.sign(noise @ MU)  # the ODE keeps the side of the plane x . MU = 0
    torch.testing.assert_close(out, side[:, None] * MU, atol=1e-3, rtol=0)
    assert 0.3 < (side > 0).float().mean() < 0.7  # both modes are drawn
    # one step returns D(sigma_max z): the posterior mean, strictly between the modes
    one = get_sampler(name)(two_mode_denoiser, noise, karras_sigmas(1, 0.002, 20.0))
    assert torch.all(one.norm(dim=-1) < 0.5 * MU.norm())


def test_ddim_is_the_euler_step_of_the_edm_ode() -> None:
    noise = torch.randn(64, 3, generator=torch.Generator().manual_seed(2))
    sigmas = karras_sigmas(4, 0.002, 20.0)
    want = euler(two_mode_denoiser, noise, sigmas)
    torch.testing.assert_close(ddim(two_mode_denoiser, noise, sigmas), want)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("steps", [1, 4])
def test_network_calls_are_fixed_by_sampler_and_steps(name: str, steps: int) -> None:
    calls = []

    def counting(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(float(sigma))
        return point_denoiser(x, sigma)

    get_sampler(name)(counting, torch.zeros(2, 3), karras_sigmas(steps, 0.002, 20.0))
    assert len(calls) == denoiser_calls(name, steps)
    assert min(calls) > 0  # the denoiser is never asked about sigma = 0


def test_unknown_sampler_is_named() -> None:
    with pytest.raises(KeyError, match="hune"):
        get_sampler("hune")
