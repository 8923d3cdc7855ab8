"""ree-sourcing: a two-stage stochastic LP for rare-earth sourcing portfolios.

The modules are grouped in layers; layers pass plain objects from one to the
next, and a module imports only from its own layer and the layers below it,
never from a higher one (tests/test_layers.py checks every import, those inside
functions too). From the lowest:

1. ``errors`` and ``safety`` (limits on user text and numbers): shared by every
   layer;
2. ``input``: ``schema`` and ``instance`` (validation, no Pyomo) -> ``data``
   (dense arrays) and ``tree`` (what is known when); ``buyers`` (several buyers
   as expanded elements and arcs), ``regimes`` (scenarios from regimes and
   events), ``overrides``, ``ranges`` (ranges files), ``builders``,
   ``workbook``; ``folders`` (reading the folders sourcing wrote, without
   trusting them, and what ``--force`` may replace);
3. ``formulation``: ``policies`` -> ``formulation`` (Pyomo) and its vectorised
   twin ``matrix``, sharing ``indexing``, ``investment`` and ``sharing`` (what
   several buyers share) -> ``built``;
4. ``solve``: ``solve`` (HiGHS); ``decompose``, ``coupled``, ``switch``,
   ``expand``, ``warm`` (variants re-solved one at a time); ``benders`` and
   ``lshaped`` (decomposition by blocks);
5. ``analysis``: ``results`` (tables, and those of a comparison's runs);
   ``binding``; ``buyers`` (each buyer's side of a run); ``diagnose``,
   ``verify`` (``verify_buyers`` for several buyers);
6. ``output``: ``export`` (run folders), ``excel``, ``charts``, ``report``,
   ``scenario_summary`` (many scenarios, summarised), ``coalition_report``,
   ``describe``, ``formatting``, ``palette``;
7. ``api``: the run pipeline (load, build, solve, tables) as the Python API;
   beside it ``distributed`` (scenario decomposition on mpi-sppy under MPI,
   which evaluates plans and writes the API's summary) and ``multistage``
   (its progressive hedging on the information tree);
8. ``studies``: questions asked of many solves, above the run pipeline:
   ``compare`` (policies side by side), ``sweep`` (a cap or any input),
   ``projects`` (what each project is worth), ``metrics`` (VSS, EVPI),
   ``sampling`` (bounds and gap of a sampled instance), ``robustness`` (ranges
   of inputs: one at a time, switch points, draws) and ``coalition`` (several
   buyers: what cooperation is worth, who pays);
9. ``bench``: times the pipeline and the studies;
10. ``cli``: the command line over all of it, with ``entry`` (its console entry
    point: signal handlers first, then ``cli``) and ``__main__``.
"""

__version__ = "0.1.0"
