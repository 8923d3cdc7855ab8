"""Bundled instances (installed as ``model.instances``)."""
