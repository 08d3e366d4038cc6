"""Trainer callbacks every run gets."""

from __future__ import annotations

import math
from pathlib import Path

from transformers import TrainerCallback

from launch.common import latest_checkpoint
from tasks.registry import RunError


class StopOnNonFiniteLoss(TrainerCallback):
    """A NaN or infinite loss stops the run, naming the step; checkpoints already saved stay, and
    no metrics.json is written."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            kept = latest_checkpoint(Path(args.output_dir).parent)
            raise RunError(
                f"the training loss became {loss} at step {state.global_step}; stopped"
                + (f" (last good checkpoint: {kept})" if kept else "")
                + ". Lower trainer.learning_rate or check the data"
            )
