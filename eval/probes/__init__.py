"""Reasoning-quality probes: one file each, one registry. `eval.probes=[...]` selects them.

A probe declares the requests it needs from the model (eval/requests.py) and scores their
answers (eval/probes/base.py has the protocol and an example). A probe of your own, in any
module, joins the registry with `@register_probe` and is then selected like the built-in ones
(`eval.probes=[...,my_probe]`; from the command line, import its module first, e.g. through
`python -c` or a module of your project that the run imports).
"""

from __future__ import annotations

from typing import Optional

from reasonlab.core import Registry
from reasonlab.eval.probes.base import Metric, Outcome, Probe, Run, mean
from reasonlab.eval.probes import (
    calibration,
    cot,
    early_answer,
    entropy,
    filler,
    hint,
    info_gain,
    mistake,
    paraphrase,
    pass_at_k,
    step_validity,
    swap,
)

PROBES: Registry[type[Probe]] = Registry("probe")


def register_probe(cls: type[Probe]) -> type[Probe]:
    """Class decorator: add a probe to the registry under `cls.name`."""
    if not cls.metrics:
        raise ValueError(f"probe '{cls.name}' declares no metrics (Probe.metrics: key -> Metric)")
    return PROBES.register(cls.name)(cls)


for _module in (pass_at_k, info_gain, early_answer, filler, paraphrase, mistake, swap, hint, step_validity, cot, calibration,
                entropy):
    register_probe(_module.PROBE)


# the evaluator's own metrics (eval/evaluator.py), beside the probes'
EVALUATOR_METRICS = {
    "accuracy": Metric(True, "greedy final-answer accuracy on the test split"),
    "ood_accuracy": Metric(True, "greedy final-answer accuracy on the ood split (longer or unseen problems)"),
}


def metric_info(key: str) -> Optional[Metric]:
    """What a metric key means: the evaluator's, or the registered probe's that declares it
    (launch/compare.py reads it); None for keys nothing declares (train/..., eval/...)."""
    if key in EVALUATOR_METRICS:
        return EVALUATOR_METRICS[key]
    return next((m for name in PROBES.names() if (m := PROBES.get(name).metric(key)) is not None), None)


__all__ = ["PROBES", "Metric", "Outcome", "Probe", "Run", "mean", "metric_info", "register_probe"]
