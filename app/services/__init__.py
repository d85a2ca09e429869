"""Orion's domain services: the layer between the API and dashboard blueprints and the models.

Every process that builds the app imports the services, the flow runs of the ephemeral API
among them, so libraries that only a few requests use are imported in the functions that use
them: ``jsonschema`` (with ``referencing`` and ``attrs``, about 50 ms) and ``httpx`` (up to
0.12 s where ``rich`` is installed, which httpx's command-line module then loads).
"""
