"""A :class:`JobConfig` as Flink configuration keys (Flink 2.x names).

The job passes these to ``StreamExecutionEnvironment.get_execution_environment``; keys it
does not set (state backend, HA, restart strategy, metrics reporters, and the checkpoint
interval unless given) come from the cluster's configuration, i.e. the FlinkDeployment's
``flinkConfiguration``. A job option set here wins over the cluster's.

Batching lives here too: the vectorised scoring UDF receives Arrow batches of
``python.fn-execution.arrow.batch.size`` rows, and a partial batch is flushed when the
Python bundle ends: after ``python.fn-execution.bundle.size`` elements, after
``python.fn-execution.bundle.time`` ms, or before a checkpoint barrier, so no answer
waits forever.
"""

from __future__ import annotations

from qaflow.flinkjob.args import JobConfig

# Elements a Python operator takes in before it must wait for all of them to be processed
# (a bundle). Flink's default (100 000) would let a backlog into one bundle, and nothing
# comes out until the whole backlog is scored; a few batches keep the scorer busy while
# results stream out, and bound how long a checkpoint barrier waits.
BUNDLE_BATCHES = 4


def flink_configuration(cfg: JobConfig) -> dict[str, str]:
    conf: dict[str, str] = {
        "pipeline.name": cfg.settings.flink_job_name,
        "python.fn-execution.arrow.batch.size": str(cfg.batch_size),
        "python.fn-execution.bundle.size": str(BUNDLE_BATCHES * cfg.batch_size),
        "python.fn-execution.bundle.time": str(cfg.settings.flink_batch_wait_ms),
        # Uids for the Table operators too (sink writer state, e.g. exactly-once transactions).
        "table.exec.uid.generation": "ALWAYS",
    }
    retain = cfg.settings.flink_checkpoint_retention == "retain"
    retention = "RETAIN_ON_CANCELLATION" if retain else "DELETE_ON_CANCELLATION"
    conf["execution.checkpointing.externalized-checkpoint-retention"] = retention
    if cfg.checkpoint_interval_ms:
        conf["execution.checkpointing.interval"] = f"{cfg.checkpoint_interval_ms} ms"
        conf["execution.checkpointing.mode"] = "EXACTLY_ONCE"  # keyed state and offsets consistent
    if cfg.settings.flink_checkpoint_dir:
        conf["execution.checkpointing.storage"] = "filesystem"
        conf["execution.checkpointing.dir"] = cfg.settings.flink_checkpoint_dir
    if cfg.settings.flink_parallelism > 0:
        conf["parallelism.default"] = str(cfg.settings.flink_parallelism)
    if cfg.restore_from:
        conf["execution.state-recovery.path"] = cfg.restore_from
    conf.update(cfg.flink_conf)
    return conf
