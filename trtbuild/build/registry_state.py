"""What a plan would do given the registry: nothing (the engine key is published), or which steps would
run (fetch and quantize/convert are skipped when the checkpoint key is published). ``plan``,
``build --dry-run`` and ``matrix`` show it, so CI can skip GPU runners for engines already built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.api import Registry
    from trtbuild.build.plan import Plan


@dataclass
class RegistryState:
    built: bool | None  # None: the registry could not be asked
    hash: str | None = None  # the published engine
    checkpoint_hash: str | None = None  # the published checkpoint the build would reuse
    would_run: list[str] = field(default_factory=list)
    unknown_because: str | None = None

    def describe(self) -> str:
        if self.built is None:
            return f"registry state unknown ({self.unknown_because}): every step may run"
        if self.built:
            return f"already built: {self.hash} (nothing would run)"
        reused = f" (checkpoint {self.checkpoint_hash} reused)" if self.checkpoint_hash else ""
        return f"not built yet: would run {', '.join(self.would_run)}{reused}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "hash": self.hash,
            "checkpoint_hash": self.checkpoint_hash,
            "would_run": self.would_run,
            "unknown_because": self.unknown_because,
        }


def registry_state(plan: Plan, registry: Registry | None) -> RegistryState:
    """Look the plan's engine and checkpoint keys up. ``registry`` None: no catalog exists yet, so nothing
    is built and every step would run."""
    steps = [s.name for s in plan.steps]
    if registry is None:
        return RegistryState(False, would_run=steps)
    engine = registry.find_by_build_key(plan.engine_key, "engine")
    if engine is not None:
        return RegistryState(True, hash=engine.hash)
    checkpoint = registry.find_by_build_key(plan.checkpoint_key, "checkpoint")
    if checkpoint is None:
        return RegistryState(False, would_run=steps)
    skipped = {"fetch", plan.checkpoint_step.name}
    return RegistryState(
        False, checkpoint_hash=checkpoint.hash, would_run=[s for s in steps if s not in skipped]
    )


def registry_state_or_unknown(plan: Plan) -> RegistryState:
    """``registry_state`` with the registry of the settings; a registry that cannot be opened is reported
    as an unknown state (a plan is still useful offline), never created."""
    from registry.api import RegistryError
    from trtbuild.settings import open_existing_registry

    try:
        return registry_state(plan, open_existing_registry())
    except RegistryError as exc:
        return RegistryState(None, unknown_because=str(exc).splitlines()[0])
