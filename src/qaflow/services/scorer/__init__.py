"""The scorer service: batched scoring over HTTP, so the model can run on its own (GPU) nodes.

The wire format is the one :class:`qaflow.scoring.remote.RemoteScorer` speaks.
"""
