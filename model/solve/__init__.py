"""Solve layer: built models to answers with HiGHS, whole or decomposed.

* ``solve``: one built model through HiGHS, the answer read back as arrays;
* ``decompose``: independent element blocks solved as LPs of their own;
* ``coupled``: blocks coupled by CVaR and budgets (Dantzig-Wolfe);
* ``switch``: one built model for several policies, re-solved warm;
* ``expand``: node-level answers mapped onto every scenario;
* ``lshaped``: the project's own L-shaped method over element blocks.

Scenario decomposition on mpi-sppy (``model.distributed``) sits above this layer,
beside the API: it loads instances and writes the API's summary.

Nothing is imported here, so importing a module of this layer loads only that
module and what it needs.
"""
