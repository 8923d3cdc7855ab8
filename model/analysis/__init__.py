"""Analysis layer: what the answers mean, and checks of them.

* ``results``: dense solution arrays to tidy tables and summary metrics (and the
  tables of a comparison's runs);
* ``binding``: which rules bind, in words;
* ``diagnose``: why a policy is infeasible, in the words of the instance;
* ``verify``: the independent check of a written run folder against its instance.

Nothing is imported here, so importing a module of this layer loads only that
module and what it needs.
"""
