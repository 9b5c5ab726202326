"""traffic-gen: sends a data set through the api at a rate, with Poisson, bursty or uniform
arrivals and a share of repeats, and reports what came back.

``python -m qaflow.services.traffic_gen --help``; see docs/services.md.
"""
