"""ree-sourcing: a two-stage stochastic LP for rare-earth sourcing portfolios.

The modules are grouped by layer, each a sub-package; layers pass plain
objects from one to the next:

* ``input``: ``schema`` and ``instance`` (validation, no Pyomo) -> ``data``
  (dense arrays) and ``tree`` (what is known when); ``buyers`` (several buyers
  as expanded elements and arcs), ``regimes`` (scenarios from regimes and
  events), ``overrides``, ``ranges`` (ranges files), ``builders``, ``workbook``;
* ``formulation``: ``policies`` -> ``formulation`` (Pyomo) and its vectorised
  twin ``matrix``, sharing ``indexing``, ``investment`` and ``sharing`` (what
  several buyers share) -> ``built``;
* ``solve``: ``solve`` (HiGHS); ``decompose``, ``coupled``, ``switch``,
  ``expand``, ``warm`` (variants re-solved one at a time); ``distributed``,
  ``multistage`` (progressive hedging on the information tree) and ``lshaped``
  (MPI);
* ``analysis``: ``results`` (tables) and ``analysis`` (compare, sweep,
  projects, VSS); ``sampling`` (bounds and gap of a sampled instance, over
  the api); ``buyers`` (each buyer's side of a run); ``diagnose``, ``verify``
  (``verify_buyers`` for several buyers);
* ``output``: ``export`` (run folders), ``folders``, ``excel``, ``charts``,
  ``report``, ``scenario_summary`` (many scenarios, summarised),
  ``coalition_report``, ``describe``, ``formatting``, ``palette``;
* ``studies``: studies of many solves above the run pipeline: ``robustness``
  (ranges of inputs: one at a time, switch points, draws) and ``coalition``
  (several buyers: what cooperation is worth, who pays). Nothing below
  imports it; the command line (and the API's callers) do.

At the top: ``api`` ties the layers together (the Python API), ``cli`` is the
command line over it (``entry`` its console entry point), ``errors`` and
``safety`` are shared by every layer, ``bench`` times the pipeline.
"""

__version__ = "0.1.0"
