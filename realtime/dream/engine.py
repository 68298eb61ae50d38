"""DreamEngine: the loaded network, the parsed objective and the backend built for them.

Its one job is to have a backend ready for the current model and layer: a change of either
loads or truncates the network and builds a new backend (an export or capture on some
backends); nothing else rebuilds anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.registry import Network, get_spec, load_network
from realtime.dream.backends import Backend, check_backend_name, check_precision, create_backend
from realtime.dream.objectives import Objective, parse_objective
from realtime.params import DreamParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineRecipe:
    """How to build an engine: enough to build a fresh one (the watchdog's restart)."""

    device: torch.device
    backend: str = "eager"
    weights: str | None = None
    progress: Callable[[str], None] | None = None
    precision: str = "auto"  # auto, fp32, bf16, fp16 (see create_backend)

    def __post_init__(self) -> None:
        check_backend_name(self.backend)
        check_precision(self.precision)


class DreamEngine:
    def __init__(
        self,
        recipe: EngineRecipe,
        params: DreamParams,
        size: tuple[int, int],
        seed: int | None = None,
        network: Network | None = None,
    ):
        self.recipe = recipe
        self.size = size  # (width, height) the backend is prepared for
        self.generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.network = network or load_network(params.model, recipe.weights, recipe.device)
        self.objective: Objective = parse_objective(params.layer, self.network.spec)
        # precision auto: what the probe chose per (model, objective), so that going back to a
        # look (a key press, a playlist) does not probe again
        self.chosen_precision: dict[tuple[str, str], str] = {}
        self.backend: Backend = self._build(params)

    @property
    def device(self) -> torch.device:
        return self.recipe.device

    @property
    def layer_name(self) -> str:
        return str(self.objective)

    @staticmethod
    def check(params: DreamParams) -> None:
        """Raise the DreamcamError `use` would raise, without loading or building anything."""
        parse_objective(params.layer, get_spec(params.model))

    def would_rebuild(self, params: DreamParams) -> bool:
        """Whether `use(params)` builds a new backend (a new model or layer), decided without
        building anything."""
        if params.model != self.network.spec.name:
            return True
        return str(parse_objective(params.layer, self.network.spec)) != str(self.objective)

    def use(self, params: DreamParams) -> bool:
        """Be ready for `params`' model and layer; True when something was rebuilt.

        The objective is parsed and the backend built before either replaces the current one,
        so a failed build leaves the engine as it was. The replaced backend is closed: its
        sessions freed, its background export stopped (a layer change a second must not leave a
        trail of exports running).
        """
        network = self.network
        if params.model != network.spec.name:
            network = load_network(params.model, self.recipe.weights, self.device)
        objective = parse_objective(params.layer, network.spec)
        if network is self.network and str(objective) == str(self.objective):
            return False
        backend = self._build(params, network, objective)
        replaced, self.backend = self.backend, backend
        self.network, self.objective = network, objective
        replaced.close()  # on the caller's thread (the dream worker's): nothing runs it any more
        return True

    def close(self) -> None:
        """Free the backend (its graphs, sessions, background export); the engine is not used after."""
        self.backend.close()

    def fresh(self, params: DreamParams, size: tuple[int, int]) -> DreamEngine:
        """A new engine on the same loaded network with a new seed and backend: nothing shared
        that a hung predecessor might still be touching."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        return DreamEngine(self.recipe, params, size, seed, network=self.network)

    def _build(
        self, params: DreamParams, network: Network | None = None, objective: Objective | None = None
    ) -> Backend:
        network, objective = network or self.network, objective or self.objective
        look = (network.spec.name, str(objective))
        precision = self.chosen_precision.get(look, self.recipe.precision)
        backend = create_backend(
            self.recipe.backend,
            network,
            objective,
            params,
            self.generator,
            self.size,
            self.recipe.progress,
            precision,
        )
        if self.recipe.precision == "auto" and backend.name == "cudagraph":
            self.chosen_precision[look] = backend.precision
        return backend
