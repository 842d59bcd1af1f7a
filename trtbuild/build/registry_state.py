"""What a plan would do given the registry: nothing (what it publishes last is there), or which steps would
run (those that make the checkpoint are skipped when the checkpoint key is published). ``plan``,
``build --dry-run`` and ``matrix`` show it, so CI can skip GPU runners for engines already built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.api import Registry
    from trtbuild.build.plan import Plan
    from trtbuild.build.plan_pytorch import PytorchPlan


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


def registry_state(plan: Plan | PytorchPlan, registry: Registry | None) -> RegistryState:
    """Look the plan's keys up: what it publishes last (the engine, or a pytorch plan's serve config), then
    its checkpoint. ``registry`` None: no catalog exists yet, so nothing is built and every step runs."""
    steps = [s.name for s in plan.steps]
    if registry is None:
        return RegistryState(False, would_run=steps)
    final = registry.find_by_build_key(plan.artifact_key, plan.artifact_kind)
    if final is not None:
        return RegistryState(True, hash=final.hash)
    if plan.backend == "pytorch":
        from registry.api import HfCheckpointMetadata

        kind, last_skipped = HfCheckpointMetadata.kind, "publish-checkpoint"
    else:
        kind, last_skipped = "checkpoint", plan.checkpoint_step.name
    checkpoint = registry.find_by_build_key(plan.checkpoint_key, kind)
    if checkpoint is None:
        return RegistryState(False, would_run=steps)
    return RegistryState(
        False, checkpoint_hash=checkpoint.hash, would_run=steps[steps.index(last_skipped) + 1 :]
    )


def registry_state_or_unknown(plan: Plan | PytorchPlan) -> RegistryState:
    """``registry_state`` with the registry of the settings; a registry that cannot be opened is reported
    as an unknown state (a plan is still useful offline), never created."""
    from registry.api import RegistryError
    from trtbuild.settings import open_existing_registry

    try:
        return registry_state(plan, open_existing_registry())
    except RegistryError as exc:
        return RegistryState(None, unknown_because=str(exc).splitlines()[0])
