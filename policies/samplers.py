"""Fixed-step deterministic samplers for the EDM probability-flow ODE (Karras et al. 2022).

The ODE in EDM's parameterization (scaling s(t) = 1, sigma(t) = t) is

    dx/dsigma = (x - D(x; sigma)) / sigma,

where ``D`` is the denoiser (its estimate of the clean sample). Every sampler here is a plain
Python loop over a fixed sigma schedule and a given starting noise, with no data-dependent
control flow, so tracing it unrolls the whole solve into one graph (the export twin feeds the
noise as a graph input). Shapes: ``noise`` is ``(B, ...)`` standard normal; ``sigmas`` is
``(steps + 1,)``, decreasing, ending at 0; a denoiser maps ``(x (B, ...), sigma ())`` to a
tensor shaped like ``x``.

- ``euler``: first order; ``steps`` denoiser calls.
- ``heun``: EDM's Algorithm 1 without churn: Euler then a trapezoid correction on every
  step but the last (which lands on sigma = 0); ``2 * steps - 1`` calls.
- ``ddim``: deterministic DDIM (eta = 0) written in its own x0-prediction form. With
  ``x = x_t / sqrt(alpha_bar)`` and ``sigma = sqrt((1 - alpha_bar) / alpha_bar)`` it is
  exactly the Euler step of the ODE above (Karras et al. 2022, sec. 3), so with the same
  schedule it returns what ``euler`` returns; it is kept as its own entry for readability
  and as a check (tests assert the identity). ``steps`` calls.

With one step every sampler returns ``D(sigma_max * noise; sigma_max)``: the conditional
mean, which averages modes. Multimodal tasks need several steps, or a distilled student.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Sampler = Callable[[Denoiser, torch.Tensor, torch.Tensor], torch.Tensor]


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """EDM's schedule: ``(steps + 1,)`` noise levels from ``sigma_max`` down to ``sigma_min``
    spaced uniformly in ``sigma ** (1 / rho)``, then a final 0. One step: ``[sigma_max, 0]``."""
    if steps < 1:
        raise ValueError(f"karras_sigmas: steps must be >= 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"karras_sigmas: need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0])
    ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def euler(denoise: Denoiser, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Euler steps of the ODE from ``x = sigmas[0] * noise``; returns x at ``sigmas[-1]``."""
    x = noise * sigmas[0]
    for i in range(len(sigmas) - 1):
        d = (x - denoise(x, sigmas[i])) / sigmas[i]
        x = x + (sigmas[i + 1] - sigmas[i]) * d
    return x


def heun(denoise: Denoiser, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Heun's second-order steps (EDM Algorithm 1, deterministic); Euler on the last step."""
    x = noise * sigmas[0]
    last = len(sigmas) - 2
    for i in range(len(sigmas) - 1):
        d = (x - denoise(x, sigmas[i])) / sigmas[i]
        x_next = x + (sigmas[i + 1] - sigmas[i]) * d
        if i < last:  # sigmas[-1] == 0: no correction there (d is undefined at sigma = 0)
            d_next = (x_next - denoise(x_next, sigmas[i + 1])) / sigmas[i + 1]
            x_next = x + (sigmas[i + 1] - sigmas[i]) * 0.5 * (d + d_next)
        x = x_next
    return x


def ddim(denoise: Denoiser, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM: predict x0, recover the noise direction, re-noise to the next level."""
    x = noise * sigmas[0]
    for i in range(len(sigmas) - 1):
        x0 = denoise(x, sigmas[i])
        eps = (x - x0) / sigmas[i]
        x = x0 + sigmas[i + 1] * eps
    return x


SAMPLERS: dict[str, Sampler] = {"euler": euler, "heun": heun, "ddim": ddim}


def denoiser_calls(sampler: str, steps: int) -> int:
    """Network evaluations of one solve (before classifier-free guidance doubles the batch)."""
    return 2 * steps - 1 if sampler == "heun" else steps


def get_sampler(name: str) -> Sampler:
    """The sampler registered as ``name``; ``KeyError`` lists the known ones."""
    if name not in SAMPLERS:
        raise KeyError(f"unknown sampler {name!r}; known: {sorted(SAMPLERS)}")
    return SAMPLERS[name]
