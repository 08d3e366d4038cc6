"""Reasoning-quality probes: one file each, one registry. `eval.probes=[...]` selects them.

A probe reads the shared `EvalState` (greedy completions of the test split, their steps and
answers, a backend for the evaluated model and one for the reader), returns its metrics, and may
add fields to each per-sample record. A probe that the task cannot support returns None for its
metrics and says why in `state.notes`; a sample a probe cannot use (no steps, no answer) gets
None for that probe.

Three hooks let a probe share the evaluator's passes instead of running its own: `requests`
(generations that need only the prompts, decoded in the same loop as the greedy splits: pass@k),
`follow` (a greedy continuation of a context made from a test completion, decoded in that loop
right after the completion ends: mistakes) and `branches` (contexts whose forced answers it
needs, packed into the truncation pass beside the chain they rewrite: filler, paraphrase).
"""

from __future__ import annotations

from tasks.registry import Registry
from eval.probes.base import EvalState, Probe
from eval.probes import (
    calibration,
    cot,
    early_answer,
    entropy,
    filler,
    info_gain,
    mistake,
    paraphrase,
    pass_at_k,
    step_validity,
)

PROBES: Registry[type[Probe]] = Registry("probe")
for _module in (pass_at_k, info_gain, early_answer, filler, paraphrase, mistake, step_validity, cot, calibration, entropy):
    PROBES.register(_module.PROBE.name)(_module.PROBE)

__all__ = ["PROBES", "EvalState", "Probe"]
