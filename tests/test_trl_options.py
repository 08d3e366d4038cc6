"""TRL's settings by TRL's names under `trainer.` (trainers/options.py) and rewards given by import
path (rewards/imported.py)."""

import importlib.util
import sys
from dataclasses import fields

import pytest

from reasonlab.core import ConfigError
from reasonlab.launch.cli import trl_overrides
from reasonlab.launch.common import group_defaults, group_options
from reasonlab.launch.schema import validate
from reasonlab.trainers import options
from reasonlab.trainers.base import RunContext

GRPO_SMALL = ["trainer.num_generations=4", "trainer.batch_size=16", "budget.max_completion_length=64", "logging_steps=1"]


def test_trl_names_need_no_plus_sign():
    given = ["trainer=grpo", "trainer.use_vllm=true", "trainer.learning_rate=1e-4", "+trainer.foo=1", "seed=3"]
    assert trl_overrides(given) == ["trainer=grpo", "++trainer.use_vllm=true", "trainer.learning_rate=1e-4",
                                    "+trainer.foo=1", "seed=3"]


@pytest.mark.parametrize("key, points_to", [
    ("per_device_train_batch_size", "trainer.batch_size"),
    ("max_completion_length", "budget.max_completion_length"),
    ("max_steps", "budget.max_steps"),
    ("report_to", "logger.kind"),
])
def test_a_trl_name_reasonlab_sets_points_to_its_setting(key, points_to, capsys):
    with pytest.raises(SystemExit):
        trl_overrides(["trainer=grpo", f"trainer.{key}=8"])
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: trainer.{key} is set by reasonlab from {points_to}") and "\n" not in err


def test_validate_refuses_unknown_and_owned_names(run_cfg):
    with pytest.raises(ConfigError, match=r"unknown trainer option 'use_vlm'.*GRPOConfig.*Did you mean 'use_vllm'"):
        validate(run_cfg("trainer=grpo", "++trainer.use_vlm=true"))
    with pytest.raises(ConfigError, match=r"unknown trainer option 'packing'.*GRPOConfig"):  # an SFTConfig field
        validate(run_cfg("trainer=grpo", "++trainer.packing=true"))
    with pytest.raises(ConfigError, match=r"trainer.seed is set by reasonlab from seed"):
        validate(run_cfg("trainer=sft", "++trainer.seed=1"))
    validate(run_cfg("trainer=sft", "++trainer.packing=true"))  # SFT's own field


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_use_vllm_without_vllm_says_how_to_install(run_cfg):
    with pytest.raises(ConfigError, match=r'^trainer.use_vllm needs vllm, which is not installed: pip install -e "\.\[vllm\]"$'):
        validate(run_cfg("trainer=grpo", "++trainer.use_vllm=true", "++trainer.vllm_mode=colocate"))


def _ctx(cfg, tmp_path):
    return RunContext(cfg=cfg, task=None, model=None, tokenizer=None, run_dir=tmp_path, report_to=[])


def test_trl_fields_reach_the_config(run_cfg, tmp_path):
    from reasonlab.trainers.grpo import grpo_args

    cfg = run_cfg("trainer=grpo", *GRPO_SMALL, "++trainer.shuffle_dataset=false", "++trainer.top_k=7",
                  "++trainer.vllm_mode=colocate", "trainer.learning_rate=1e-4")
    validate(cfg)
    args = grpo_args(_ctx(cfg, tmp_path))
    assert (args.shuffle_dataset, args.top_k, args.vllm_mode, args.learning_rate) == (False, 7, "colocate", 1e-4)
    assert args.per_device_train_batch_size == 16 and args.num_generations == 4  # reasonlab's own names still rule
    default = grpo_args(_ctx(run_cfg("trainer=grpo", *GRPO_SMALL), tmp_path))
    assert default.shuffle_dataset is True and default.top_k != 7


def test_sft_field_wins_over_what_reasonlab_fixes(run_cfg, tmp_path):
    from trl import SFTConfig

    from reasonlab.trainers.options import build_config

    cfg = run_cfg("trainer=sft", "++trainer.packing=true", "++trainer.dataset_num_proc=2")
    args = build_config(SFTConfig, cfg.trainer, dict(output_dir=str(tmp_path), packing=False, dataset_num_proc=None,
                                                     use_cpu=True))
    assert args.packing is True and args.dataset_num_proc == 2


def test_trl_refusal_is_one_line(run_cfg, tmp_path):
    from reasonlab.trainers.grpo import grpo_args

    cfg = run_cfg("trainer=grpo", *GRPO_SMALL, "++trainer.generation_batch_size=16", "++trainer.steps_per_generation=2")
    with pytest.raises(ConfigError, match=r"^TRL's GRPOConfig refused the trainer settings: .*generation_batch_size"):
        grpo_args(_ctx(cfg, tmp_path))


@pytest.mark.parametrize("name", group_options("trainer"))
def test_every_trl_named_option_of_a_trainer_yaml_is_read_by_reasonlab(name):
    """A YAML option with a TRL field's name is read (and checked) by reasonlab, not passed raw."""
    from omegaconf import OmegaConf

    node = OmegaConf.create({k: v for k, v in group_defaults("trainer", name).items() if "${" not in str(v)})
    for cls in {options.config_class(node), *([options.config_classes()["DPOConfig"]] if name == "rlsf" else [])}:
        shared = set(group_defaults("trainer", name)) & {f.name for f in fields(cls)}
        assert shared <= options.READ, (name, cls.__name__, shared - options.READ)
        assert not shared & set(options.OWNED)


REWARD_MODULE = '''
SEEN = []

def brevity(completions, **kwargs):
    SEEN.append(sorted(kwargs))
    return [1.0 / (1 + len(c)) for c in completions]

def half_none(completions, **kwargs):
    return [None if i % 2 else 0.5 for i in range(len(completions))]

def broken(completions, **kwargs):
    raise KeyError("no such column")

NOT_A_FUNCTION = 3
'''


@pytest.fixture
def reward_module(tmp_path, monkeypatch):
    (tmp_path / "lab_rewards.py").write_text(REWARD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lab_rewards", None)
    yield "lab_rewards"
    sys.modules.pop("lab_rewards", None)


@pytest.mark.parametrize("path, message", [
    ("lab_rewards:brevty", r"lab_rewards has no 'brevty' \(its functions: .*brevity"),
    ("no_such_module:fn", r"cannot import no_such_module \(ModuleNotFoundError"),
    ("lab_rewards:NOT_A_FUNCTION", r"NOT_A_FUNCTION is a int, not a function"),
    ("lab_rewards:", r"an import path is module:function"),
])
def test_bad_reward_paths_fail_before_training(run_cfg, reward_module, path, message):
    with pytest.raises(ConfigError, match=message):
        validate(run_cfg("trainer=grpo", f"trainer.rewards=[accuracy,'{path}']"))


def test_grpo_with_a_reward_by_import_path(run_cfg, base_run, reward_module):
    from reasonlab.launch.train import train

    cfg = run_cfg("trainer=grpo", f"model.init_from={base_run}", *GRPO_SMALL, "eval.probes=[]", "run_name=imported",
                  "trainer.rewards=[accuracy,'lab_rewards:brevity','lab_rewards:half_none']",
                  "trainer.reward_weights=[1.0,0.5,0.1]")
    result = train(cfg)
    log = result["train/last_log"]
    assert log["rewards/brevity/mean"] > 0 and log["rewards/half_none/mean"] == pytest.approx(0.5)
    seen = sys.modules["lab_rewards"].SEEN
    assert seen and {"answer", "steps", "example_id", "prompts", "completion_ids"} <= set(seen[0])


def test_a_failing_imported_reward_names_itself(reward_module):
    from reasonlab.rewards.imported import imported_reward

    reward = imported_reward("lab_rewards:broken", task=None)
    assert reward.__name__ == "broken"
    from reasonlab.core import RewardError

    with pytest.raises(RewardError, match=r"reward 'lab_rewards:broken' failed .*KeyError"):
        reward(prompts=["p"], completions=["c"])


@pytest.mark.parametrize("world, extra, layout", [
    (1, [], (32, 1)),
    (2, [], (16, 1)),
    (8, [], (4, 1)),
    (2, ["++trainer.gradient_accumulation_steps=4"], (4, 4)),
    (2, ["++trainer.per_device_batch_size=4"], (4, 4)),
    (1, ["++trainer.per_device_batch_size=8"], (8, 4)),
])
def test_the_batch_is_global(run_cfg, tmp_path, monkeypatch, world, extra, layout):
    """Per optimizer step every run trains on trainer.batch_size examples, however many processes."""
    from reasonlab.trainers.base import common_args

    monkeypatch.setenv("WORLD_SIZE", str(world))
    ctx = _ctx(run_cfg("trainer=sft", "trainer.batch_size=32", *extra), tmp_path)
    args = common_args(ctx)
    per_device, accumulation = args["per_device_train_batch_size"], args["gradient_accumulation_steps"]
    assert (per_device, accumulation) == layout and per_device * accumulation * world == 32
    assert ctx.metrics == {"train/world_size": world, "train/global_batch": 32, "train/per_device_batch_size": per_device,
                           "train/gradient_accumulation_steps": accumulation}


@pytest.mark.parametrize("world, extra", [(3, []), (2, ["++trainer.per_device_batch_size=5"]),
                                          (4, ["++trainer.gradient_accumulation_steps=16"])])
def test_a_global_batch_that_does_not_divide_is_one_line(run_cfg, tmp_path, monkeypatch, world, extra):
    from reasonlab.trainers.base import common_args

    monkeypatch.setenv("WORLD_SIZE", str(world))
    with pytest.raises(ConfigError, match=rf"trainer.batch_size \(32\) is the global batch: it must be a multiple of the "
                                          rf"{world} process\(es\)"):
        common_args(_ctx(run_cfg("trainer=sft", "trainer.batch_size=32", *extra), tmp_path))


def test_grpo_global_batch_reaches_trl(run_cfg, tmp_path, monkeypatch):
    import reasonlab.trainers.base as base_module
    from reasonlab.trainers.grpo import grpo_args

    monkeypatch.setattr(base_module, "world_size", lambda: 2)  # (GRPOConfig with WORLD_SIZE=2 starts torch.distributed)
    args = grpo_args(_ctx(run_cfg("trainer=grpo", "trainer.batch_size=32", "trainer.num_generations=8"), tmp_path))
    assert args.per_device_train_batch_size == 16 and args.gradient_accumulation_steps == 1
