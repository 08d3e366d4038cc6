"""entropy_rlvr: RLVR on the high-entropy "forking" tokens only (Wang et al. 2025, "Beyond the
80/20 Rule", arXiv 2506.01939).

Differences from grpo (everything else -- rewards, sampling, budget -- is the same):
  1) Policy-gradient loss only on tokens whose entropy is in the top `top_entropy_quantile`
     (default 0.2) of the batch's completion tokens; the other ~80% get no gradient. TRL's
     `GRPOConfig.top_entropy_quantile` implements the mask; this file only configures it.
  2) DAPO-style objective as in the paper: token-level loss normalisation (`loss_type: dapo`),
     clip-higher (epsilon 0.2 low / 0.28 high), no KL (beta 0).
  3) Logged per step: `entropy_mask/grad_token_share` (~0.2) and `entropy_mask/threshold`.

    python -m reasonlab.train trainer=entropy_rlvr model.init_from=outputs/study/base
    python -m reasonlab.train trainer=entropy_rlvr trainer.top_entropy_quantile=0.5
"""

from __future__ import annotations

from reasonlab.trainers import grpo
from reasonlab.trainers.base import RunContext


def build(ctx: RunContext):
    return grpo.build(ctx)
