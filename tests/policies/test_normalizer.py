import numpy as np
import pytest
import torch

from policies.normalizer import Normalizer, NotFitted


def test_fit_sets_statistics_and_normalizes() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal([1.0, -2.0, 5.0], [0.5, 2.0, 1e-6], size=(4000, 3))
    norm = Normalizer(3)
    norm.fit(data)
    out = norm(torch.as_tensor(data, dtype=torch.float32))
    assert torch.allclose(out.mean(0)[:2], torch.zeros(2), atol=0.05)
    assert torch.allclose(out.std(0)[:2], torch.ones(2), atol=0.05)
    assert float(norm.std[2]) == pytest.approx(norm.eps)  # constant feature floored, not divided by ~0


def test_unfitted_normalizer_refuses_export_and_nan_data_is_rejected() -> None:
    norm = Normalizer(2)
    with pytest.raises(NotFitted, match="obs_norm"):
        norm.check_fitted("obs_norm")
    with pytest.raises(ValueError, match="NaN"):
        norm.fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        norm.fit(np.zeros((5, 3)))
