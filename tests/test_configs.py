"""Every config in conf/ composes, and every field resolves."""

import pytest
from omegaconf import OmegaConf

from conftest import compose
from reasonlab.launch.common import CONF_DIR

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "experiment"))


@pytest.mark.parametrize(
    "group, option",
    [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))],
)
def test_every_group_option_composes(group, option):
    extra = ["task.path=/data/x.jsonl"] if (group, option) == ("task", "jsonl") else []
    cfg = compose([f"{group}={option}", *extra])
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container[group] is not None
    if group in ("trainer", "task"):
        assert container[group]["name"] == option
    if (group, option) == ("eval", "gpu"):  # the GPU sizes over the defaults, nothing else changed
        default = OmegaConf.to_container(compose([]), resolve=True)["eval"]
        assert container["eval"] == {**default, "batch_size": 1024, "truncation_rows": 1024}


def test_evaluate_config_composes():
    cfg = compose(["model.name_or_path=/ckpt"], config_name="evaluate")
    assert OmegaConf.to_container(cfg, resolve=True)["output_dir"] == "/ckpt/eval-arith"


def test_run_dir_is_named_from_options():
    cfg = compose(["trainer=grpo", "seed=3", "output_root=out"])
    assert cfg.run_dir == "out/grpo-arith-seed3"


def test_budget_is_read_by_every_trainer():
    # The budget lives once, at the top: no trainer config may define its own step count.
    for path in (CONF_DIR / "trainer").glob("*.yaml"):
        keys = OmegaConf.load(path).keys()
        assert not {"max_steps", "max_completion_length", "eval_samples"} & set(keys), path.name


@pytest.mark.parametrize("model", ["qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "llama-3.2-1b-instruct"])
def test_real_models_carry_published_recipes_per_trainer(model):
    """conf/model/<real model>.yaml: each trainer gets its own published learning rate and schedule;
    the tiny model keeps its own; the command line still wins."""
    from conftest import compose

    def lr(*o):
        t = compose(list(o)).trainer
        return t.learning_rate, t.lr_scheduler_type, t.warmup_steps

    assert lr(f"model={model}", "trainer=sft") == (2.0e-4, "cosine", 25)
    for trainer in ("grpo", "rlag", "entropy_rlvr", "rlsf"):
        assert lr(f"model={model}", f"trainer={trainer}") == (2.0e-5, "cosine", 50)
    assert lr(f"model={model}", "trainer=rlsf", "trainer.mode=dpo") == (5.0e-6, "linear", 0)
    assert lr("trainer=sft") == (2.0e-3, "cosine", 50) and lr("trainer=grpo") == (3.0e-5, "constant", 0)
    assert lr(f"model={model}", "trainer=sft", "trainer.learning_rate=1e-5")[0] == 1e-5
