"""The one function that turns named robot state into a policy's observation vector.

Simulation, the runtime on the robot and log replay all call ``build_observation`` with a
mapping of field name -> values, so the order and units of the vector are defined once, by
the task spec, and never by index slices scattered over the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sim.spec import FieldSpec


class ObservationError(ValueError):
    """Raised when raw state lacks a field or a field has the wrong size."""


def field_vector(state: Mapping[str, object], spec: FieldSpec) -> np.ndarray:
    """One field of ``state`` as a float64 vector of ``spec.size`` values."""
    if spec.name not in state:
        raise ObservationError(f"state has no field {spec.name!r} (has {sorted(state)})")
    value = np.asarray(state[spec.name], dtype=np.float64).reshape(-1)
    if value.size != spec.size:
        raise ObservationError(
            f"field {spec.name!r} has {value.size} values, the spec says {spec.size} ({spec.unit})"
        )
    return value


def build_observation(state: Mapping[str, object], fields: Sequence[FieldSpec]) -> np.ndarray:
    """Concatenate ``fields`` of ``state`` in spec order into a float32 vector.

    Args:
        state: named robot state, e.g. ``{"joint_pos": (7,), "joint_vel": (7,), ...}``.
        fields: the task spec's ``observation`` fields.

    Returns:
        ``(sum(f.size for f in fields),)`` float32. NaN is passed through; guarding against
        it is the safety filter's job, which must see it to act on it.
    """
    return np.concatenate([field_vector(state, f) for f in fields]).astype(np.float32)
