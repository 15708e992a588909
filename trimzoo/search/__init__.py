"""Optimal sub-architecture extraction (Bort; de Wynter & Perry 2020, de
Wynter 2020): the ⟨D, A, H, I⟩ of a teacher that is best under parameters,
measured inference cost and error at once (the W-coefficient), with an
ε-partition of the space so that only one candidate per cost cell trains.

Also compression to a budget (``trimzoo.search.compress``): the
most accurate model cut from a fine-tuned classifier that fits a measured
cost, by the search's space and proxy, healed by two-stage distillation.

Uses models, compression, training, export and bench; nothing in trimzoo
imports it (the package face's deprecated ``trimzoo.compress`` alias
aside). Entry points:
``tools/search.py`` (``configs/search.py``), ``tools/compress.py``.
"""

from trimzoo.search.algorithm import (
    choose_epsilon,
    cost_factor,
    pareto_front,
    partition,
    w_coefficient,
)
from trimzoo.search.budget import (RUNTIMES, Budget, BudgetError,
                                   CompressSettings, TimeBudgetError)
from trimzoo.search.compressor import compress
from trimzoo.search.costs import COSTS, measure_costs, speedup
from trimzoo.search.estimate import (
    INITS,
    build_candidate,
    estimate_error,
    teacher_importance,
)
from trimzoo.search.run import Search, search
from trimzoo.search.space import SPACES, Candidate, build_space

__all__ = ["COSTS", "INITS", "RUNTIMES", "SPACES", "Budget", "BudgetError",
           "Candidate", "CompressSettings", "Search", "TimeBudgetError", "build_space",
           "build_candidate", "compress", "choose_epsilon", "cost_factor",
           "estimate_error", "measure_costs", "pareto_front", "partition",
           "search", "speedup", "teacher_importance", "w_coefficient"]
