"""The task registry: built-ins load lazily, unknown names are listed, outsiders can register."""

from __future__ import annotations

import pytest

import sim
from sim import registry


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test do not leak into the others."""
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))


def test_builtin_reach_is_registered() -> None:
    assert "reach" in sim.names()


def test_unknown_task_error_lists_registered_names() -> None:
    with pytest.raises(KeyError) as err:
        sim.make("no_such_task")
    message = str(err.value)
    assert "no_such_task" in message
    assert "reach" in message


@pytest.mark.usefixtures("clean_registry")
def test_outside_factory_registers_and_gets_kwargs() -> None:
    @sim.register("outside_task")
    def factory(size: int = 1) -> dict[str, int]:
        return {"size": size}

    assert "outside_task" in sim.names()
    assert sim.make("outside_task", size=3) == {"size": 3}


@pytest.mark.usefixtures("clean_registry")
def test_name_clash_with_another_factory_raises() -> None:
    sim.register("clash")(dict)
    sim.register("clash")(dict)  # the same factory again is fine (module reloads)
    with pytest.raises(ValueError, match="clash"):
        sim.register("clash")(list)
