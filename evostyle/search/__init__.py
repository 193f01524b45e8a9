"""The search: configs, the parameter space, scoring, the evaluator, and running a search into a run
directory. ``python -m evostyle.search`` is the command line (:mod:`evostyle.cli.search`).

>>> from evostyle.search import make_config, run_search            # doctest: +SKIP
>>> result = run_search(make_config({"maxiter": 2}), "results/my-run")   # doctest: +SKIP
"""

from evostyle.rundir.result import Generation, SearchResult
from evostyle.search import baselines, ray_executor  # noqa: F401  register the baselines and the "ray" executor
from evostyle.search.config import SearchConfig, load_toml, make_config
from evostyle.search.evaluator import Evaluation, Evaluator
from evostyle.search.executors import EXECUTORS, Executor
from evostyle.search.optimizers import OPTIMIZERS, Optimizer
from evostyle.search.plan import Plan
from evostyle.search.problem import SearchProblem
from evostyle.search.run import Built, build, resume_search, run_search
from evostyle.search.scoring import DIVERSITY_METRICS, OBJECTIVES, DiversityMetric, Objective, ScoreConfig
from evostyle.search.space import Param, Space, style_space

__all__ = ["SearchConfig", "make_config", "load_toml", "build", "Built", "Plan", "run_search", "resume_search",
           "SearchResult", "Generation", "Evaluator", "Evaluation", "SearchProblem", "ScoreConfig", "OPTIMIZERS",
           "Optimizer", "DIVERSITY_METRICS",
           "DiversityMetric", "OBJECTIVES", "Objective", "Param", "Space", "style_space", "EXECUTORS", "Executor"]
