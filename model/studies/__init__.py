"""Studies: the layer of studies above the run pipeline.

A study asks a question of many solves of one instance (what each input's range
does to the answer, where a decision flips) and tabulates the answers; it uses
the layers below (input, formulation, solve, analysis, output and the API) and
nothing below imports it (tests/test_layers.py). The command line and the
Python API's callers call studies; their folders are written by model.output.

* ``compare``: one instance under several policies, side by side (`sourcing
  compare`);
* ``sweep``: the frontier along a country cap or any input (`sourcing sweep`);
* ``projects``: what each project is worth (`sourcing projects`);
* ``metrics``: WS, EEV, EVPI and VSS (`--stochastic-metrics` of `solve` and `compare`);
* ``sampling``: the bounds and gap of a sampled instance over 2R + 1 solves
  (`solve --replications R --evaluate M`);
* ``robustness``: how sure are the plan's numbers and decisions, given ranges on
  its inputs (`sourcing robustness`): one input at a time (a tornado), switch
  points by bisection, joint seeded draws (docs/robustness.md).
* ``coalition``: what cooperation among several buyers is worth and who should
  pay for it (the cooperative game of DESIGN.md, "Several buyers"; `sourcing
  coalition`).
"""
