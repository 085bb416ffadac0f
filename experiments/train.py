"""Trains a config, evaluates it and plots a few predictions.

    python -m experiments.train --config configs/NAME.py[:key=value,...] --workdir DIR [--config.KEY=VALUE ...]

Resumes from ``DIR``'s latest checkpoint when there is one. On SIGTERM it saves a checkpoint
and exits with ``--preempted_exit_code`` (75 by default, so a scheduler requeues the job); exit
codes and ``--debug`` / ``--verbosity`` are in ``experiments/cli.py``. Writes ``DIR/metrics.jsonl``,
TensorBoard events (``DIR/tensorboard``), ``config.json``, ``git_revision.txt``,
checkpoints, ``eval_<split>.json`` with its per-class table, and ``plots/`` (predictions
on the first ``config.num_plots`` evaluation videos). Multi-process: pass
``--coordinator_address``, ``--num_processes`` and ``--process_id`` (or set
``--distributed`` on a cluster where ``jax.distributed.initialize()`` finds them).
"""

from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from experiments import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:key=value,...]", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory of checkpoints, metrics and plots")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() (cluster auto-detect)")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index")
_PROGRESS = flags.DEFINE_bool("progress", True, "show the progress bar")
_PLOTS = flags.DEFINE_bool("plots", True, "plot predictions on a few evaluation videos at the end")
_PREEMPTED_EXIT_CODE = flags.DEFINE_integer(
    "preempted_exit_code", cli.EXIT_PREEMPTED, "exit code after SIGTERM saved a checkpoint (0: report success)"
)
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
    """``jax.distributed.initialize`` from the flags (no-op for a single process)."""
    import jax

    if _COORDINATOR.value or (_NUM_PROCESSES.value or 1) > 1:
        jax.distributed.initialize(
            coordinator_address=_COORDINATOR.value, num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value
        )
    elif _DISTRIBUTED.value:
        jax.distributed.initialize()


def main(argv) -> int:
    del argv
    config = _CONFIG.value
    initialize_distributed()
    from cfjax.train import loop

    scores = loop.train(config, _WORKDIR.value, progress=_PROGRESS.value)
    if not scores:
        return _PREEMPTED_EXIT_CODE.value  # the checkpoint is saved: run the same command to resume
    evaluated, _ = loop.evaluate(config, _WORKDIR.value, "best")
    print("eval:", loop.format_metrics(evaluated))
    if _PLOTS.value and config.num_plots:
        from cfjax.analysis import predict

        for path in predict.plot_eval_examples(config, _WORKDIR.value, config.num_plots):
            print("plot:", path)
    return 0


if __name__ == "__main__":
    cli.run(main)
