"""Optimal sub-architecture extraction (Bort; de Wynter & Perry 2020, de
Wynter 2020): the ⟨D, A, H, I⟩ of a teacher that is best under parameters,
measured inference cost and error at once (the W-coefficient), with an
ε-partition of the space so that only one candidate per cost cell trains.

Uses models, compression, training, export and bench; nothing in trimzoo
imports it. Entry point: ``tools/search.py`` (``configs/search.py``).
"""

from trimzoo.search.algorithm import (
    choose_epsilon,
    cost_factor,
    pareto_front,
    partition,
    w_coefficient,
)
from trimzoo.search.costs import COSTS, measure_costs, speedup
from trimzoo.search.estimate import (
    INITS,
    build_candidate,
    estimate_error,
    teacher_importance,
)
from trimzoo.search.run import Search, search
from trimzoo.search.space import SPACES, Candidate, build_space

__all__ = ["COSTS", "INITS", "SPACES", "Candidate", "Search", "build_space",
           "build_candidate", "choose_epsilon", "cost_factor",
           "estimate_error", "measure_costs", "pareto_front", "partition",
           "search", "speedup", "teacher_importance", "w_coefficient"]
