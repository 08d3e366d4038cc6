"""Trainer callbacks of a run: every run gets the first two; `PeriodicEval` when eval.every_steps > 0."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

from reasonlab.core import RunError, dist
from reasonlab.launch.common import latest_checkpoint
from reasonlab.launch.scoring import log_to_wandb, scalars

if TYPE_CHECKING:
    from reasonlab.eval.config import EvalConfig


def diverged(what: str, step: int, output_dir: str) -> RunError:
    kept = latest_checkpoint(Path(output_dir).parent)
    return RunError(f"{what} at step {step}; stopped" + (f" (last good checkpoint: {kept})" if kept else "")
                    + ". Lower trainer.learning_rate or check the data")


def check_weights(model, step: int, output_dir: str, discard: Path | None = None) -> None:
    """Raise `diverged` when a parameter holds a NaN or an infinity, first deleting `discard` (a
    checkpoint of those weights, never to be resumed from)."""
    import shutil

    import torch

    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())]
    if bad:
        if discard is not None:
            shutil.rmtree(discard, ignore_errors=True)
        raise diverged(f"{len(bad)} weight tensors became non-finite (first: {bad[0]})", step, output_dir)


class StopOnNonFiniteLoss(TrainerCallback):
    """A NaN or infinite loss or gradient norm, or a non-finite weight, stops the run, naming the
    step; checkpoints already saved stay, and no metrics.json is written. (Once the weights are
    NaN, TRL may log a loss of 0.0: the gradient norm and the weights still tell.)"""

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                raise diverged(f"the training {key.replace('_', ' ')} became {value}", state.global_step, args.output_dir)
        if model is not None:
            check_weights(model, state.global_step, args.output_dir)

    def on_save(self, args, state, control, model=None, **kwargs):
        """Never leave a checkpoint of non-finite weights to resume from; the one kept is readable
        by collaborators (safetensors and torch write 0600)."""
        saved = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if model is not None:
            check_weights(model, state.global_step, args.output_dir, discard=saved)
        if saved.is_dir():
            from reasonlab.core import make_readable

            make_readable(saved)


class Preempted(RunError):
    """The run was asked to stop (preemption or time limit) and saved a checkpoint to resume from."""


class SaveOnPreemption(TrainerCallback):
    """SLURM's preemption / time-limit signal (SIGUSR2 through submitit, or SIGTERM), or Ctrl-C, ends the run
    at the end of the current optimizer step with a full checkpoint (model, optimizer, scheduler,
    RNG, step); then the handler that was installed before (submitit's: requeue the same command)
    runs, or, without one, the run stops with a message. The requeued or rerun command resumes
    from that checkpoint (resume=auto). No metrics.json is written by the interrupted run."""

    SIGNALS = ("SIGUSR2", "SIGTERM", "SIGINT")  # SIGINT: Ctrl-C (a second Ctrl-C stops at once)

    def __init__(self):
        import signal
        import threading

        self.pending: int | None = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):
                    num = getattr(signal, name)
                    self.previous[num] = signal.signal(num, self._on_signal)

    def _on_signal(self, signum, frame):
        import signal

        if signum == signal.SIGINT and self.pending == signum:
            raise KeyboardInterrupt
        self.pending = signum

    def on_step_end(self, args, state, control, **kwargs):
        if self.pending is not None:
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if self.pending is None:
            return
        import signal

        signum, self.pending = self.pending, None
        self.restore()
        previous = self.previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:  # Python's Ctrl-C: KeyboardInterrupt
            previous(signum, None)  # submitit: checkpoint() -> requeue the same command, then exit
        raise Preempted(
            f"stopped by {signal.Signals(signum).name} at step {state.global_step}; checkpoint saved in "
            f"{args.output_dir}. Rerun the same command to resume (resume=auto)"
        )

    def restore(self):
        import signal

        for num, handler in self.previous.items():
            signal.signal(num, handler if handler is not None else signal.SIG_DFL)


class PeriodicEval(TrainerCallback):
    """Runs the evaluator every `eval.every_steps` optimizer steps on `eval.during_train_samples`
    test problems, so information gain and faithfulness appear as curves over training; the rows
    go to eval_history.jsonl, the trainer's log history and W&B."""

    def __init__(self, cfg, eval_config: EvalConfig, tokenizer, task, run_dir: Path, reader=None):
        self.cfg, self.tokenizer, self.task, self.run_dir, self.reader = cfg, tokenizer, task, run_dir, reader
        # the run's evaluator settings (schema.validate's) on fewer problems, without progress bars
        self.eval_config = eval_config.replace(num_samples=cfg.eval.during_train_samples or eval_config.num_samples,
                                               progress=False)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.cfg.eval.every_steps
        if not every or state.global_step % every or state.global_step == state.max_steps:
            return
        from reasonlab.eval.evaluator import evaluate

        metrics, _, _ = evaluate(model, self.tokenizer, self.task, self.eval_config, reader=self.reader)
        if self.eval_config.entropy_threshold is None and metrics.get("entropy/p80") is not None:
            # one threshold for the whole run (the first evaluation's 80th percentile), so the share
            # above it can move; each evaluation's own percentile would read 0.20 by construction
            self.eval_config = self.eval_config.replace(entropy_threshold=metrics["entropy/p80"])
        row = {"step": state.global_step, **scalars(metrics)}
        if dist.is_main():
            with (self.run_dir / "eval_history.jsonl").open("a") as fh:
                fh.write(json.dumps(row) + "\n")
        state.log_history.append({f"eval/{k.removeprefix('eval/')}": v for k, v in row.items()})
        log_to_wandb(self.cfg, metrics, [], step=state.global_step)
