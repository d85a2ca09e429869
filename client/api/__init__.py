"""Talking to the Orion API: the HTTP client (:mod:`client.api.client`), the API's objects
(:mod:`client.api.objects`) and states (:mod:`client.api.states`), errors
(:mod:`client.api.exceptions`), settings (:mod:`client.api.settings`) and the in-process
ephemeral API (:mod:`client.api.ephemeral`). Nothing here knows about flows or agents."""
