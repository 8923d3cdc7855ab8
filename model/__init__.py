"""ree-sourcing: a two-stage stochastic LP for rare-earth sourcing portfolios.

Layers, each in its own module and passing plain objects: ``schema`` and
``instance`` (validation, no Pyomo) -> ``data`` (dense arrays) -> ``policies``
-> ``formulation`` (Pyomo) -> ``solve`` (HiGHS) -> ``results`` (tables) ->
``export`` (run folders) -> ``cli``. ``api`` ties them together.
"""

__version__ = "0.1.0"
