"""Output layer: what people and programs read, written and read back safely.

* ``export``: writing run, comparison and sweep folders (whole or not at all;
  model.input.folders reads them back without trusting them);
* ``excel``: formatted Excel workbooks of the folders;
* ``charts``: matplotlib charts of runs, comparisons and sweeps;
* ``report``: the self-contained HTML report of a folder;
* ``describe``: a policy's rules in words, for the reports;
* ``formatting``: numbers for people (units, fixed decimals);
* ``palette``: one colour per country, source and project.

Nothing is imported here, so importing a module of this layer loads only that
module and what it needs.
"""
