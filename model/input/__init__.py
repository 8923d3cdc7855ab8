"""Input layer: instance files to validated, dense data (no Pyomo).

* ``schema``: the pydantic validation model of the YAML format;
* ``instance``: loading a YAML file (limits, validation, cross-reference checks);
* ``data``: the instance as dense numpy arrays (:class:`~model.input.data.ProblemData`);
* ``tree``: what is known when, the information tree derived from the scenarios;
* ``overrides``: ``path=value`` what-if overrides (``--set``, ``sweep --param``);
* ``builders``: instances built in code, scenario and synthetic generators;
* ``workbook``: instances as Excel workbooks, written and read back exactly;
* ``folders``: reading the folders sourcing wrote without trusting them (report,
  verify), and what ``--force`` may replace.

Nothing is imported here, so importing a module of this layer loads only that
module and what it needs.
"""
