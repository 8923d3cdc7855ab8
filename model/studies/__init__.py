"""Studies: questions answered by many runs of the pipeline (model.api), above it.

A study solves an instance several times (every coalition of buyers, say),
combines the runs into its own answer and writes its own folder. It may use
every layer below (input to output and the API); nothing below imports it.

* ``coalition``: what cooperation among several buyers is worth and who should
  pay for it (the cooperative game of DESIGN.md, "Several buyers").
"""
