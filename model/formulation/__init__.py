"""Formulation layer: the stochastic sourcing LP, in Pyomo and as matrices.

* ``policies``: named policies resolved against the dense data;
* ``indexing``: the index sets (slots, decision nodes) shared by both builders;
* ``investment``: the constraint families of projects, as row terms;
* ``formulation``: the LP in Pyomo, one function per constraint family (the definition);
* ``matrix``: the identical LP built with numpy, straight to matrices;
* ``built``: the built model as plain data, read by the solve and analysis layers.

Nothing is imported here (no Pyomo until ``formulation`` itself is imported).
"""
