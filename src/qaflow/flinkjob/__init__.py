"""The PyFlink score job: Kafka ``qa.answers`` -> batched scoring -> keyed state -> routed outputs.

- :mod:`~qaflow.flinkjob.args`: command line and environment -> :class:`JobConfig`;
- :mod:`~qaflow.flinkjob.flinkconf`: :class:`JobConfig` -> Flink configuration keys;
- :mod:`~qaflow.flinkjob.records`: the pure steps (decode, batch scoring, routing, state codec);
- :mod:`~qaflow.flinkjob.operators`: the PyFlink functions, thin shells over ``records``;
- :mod:`~qaflow.flinkjob.topology`: the job graph (source, operators, sink);
- :mod:`~qaflow.flinkjob.runner`: connector jars and the local MiniCluster run.

Only ``operators``, ``topology`` and ``runner`` touch PyFlink (lazily, for ``runner``); the
rest imports no transport and is unit-tested without a cluster.
"""
