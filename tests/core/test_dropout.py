"""LoRA dropout with PCG64 masks (``training/dropout.py``): the same dropout as ``torch.nn.Dropout`` -- keep
probability, scaling, independent masks, gradients, eval mode -- with its bits from another generator; runs stay
reproducible from their seed and their adapters load back."""

import json

import pytest
import torch

from rbft_core.specs.training import TrainSpec
from rbft_core.training import dropout
from rbft_core.training.train import train_stage, wrap_lora
from rbft_core.models.loading import load_vlm

SAMPLING = dict(num_frames=4, max_pixels=4 * 28 * 28)


def test_an_element_is_kept_with_probability_one_minus_p_and_scaled_by_its_inverse():
    torch.manual_seed(0)
    layer = dropout.pcg_dropout_class()(0.05).train()
    x = torch.rand(4, 512, 512) + 0.5  # never 0: a 0 in the output is a dropped element
    y = layer(x)
    kept = y != 0
    n = x.numel()
    share = kept.float().mean().item()
    sigma = (0.05 * 0.95 / n) ** 0.5
    assert abs(share - 0.95) < 5 * sigma, share
    torch.testing.assert_close(y[kept], x[kept] / 0.95, rtol=1e-6, atol=0)
    assert dropout.keep_threshold(0.05) / 2**32 == pytest.approx(0.95, abs=2**-32)
    assert dropout.keep_threshold(0.0) == 2**32 - 1  # p = 0 is never built (peft uses Identity), but stays sane


def test_masks_are_independent_across_calls_and_fixed_by_the_seed():
    layer = dropout.pcg_dropout_class()(0.5).train()
    x = torch.ones(256, 256)
    torch.manual_seed(3)
    first, second = layer(x) != 0, layer(x) != 0
    torch.manual_seed(3)
    assert torch.equal(layer(x) != 0, first)  # the run's seed decides every mask
    both = (first & second).float().mean().item()
    assert abs(both - 0.25) < 0.01  # two calls draw independent masks (0.5 * 0.5 kept in both)


def test_the_gradient_is_the_kept_mask_times_the_scale():
    torch.manual_seed(1)
    layer = dropout.pcg_dropout_class()(0.2).train()
    x = (torch.rand(64, 96) + 0.5).requires_grad_()
    y = layer(x)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * (y != 0) / 0.8)


def test_eval_mode_and_inplace_use_torch_dropout():
    layer = dropout.pcg_dropout_class()(0.3)
    x = torch.randn(8, 8)
    assert torch.equal(layer.eval()(x), x)
    inplace = dropout.pcg_dropout_class()(0.3, inplace=True).train()
    torch.manual_seed(4)
    want = torch.nn.functional.dropout(x.clone(), 0.3, True, inplace=True)
    torch.manual_seed(4)
    assert torch.equal(inplace(x.clone()), want)


def test_every_lora_dropout_of_a_peft_model_is_swapped(tiny_model_dir):
    lm = load_vlm(str(tiny_model_dir))
    model = wrap_lora(lm.model, TrainSpec(dataset="d", model="m", lora_dropout=0.1))
    lora_layers = [m for n, m in model.named_modules() if hasattr(m, "lora_dropout")]
    assert lora_layers and dropout.use_pcg_dropout(model) == len(lora_layers)
    assert all(type(m.lora_dropout["default"]).__name__ == "PCGDropout" and m.lora_dropout["default"].p == 0.1
               for m in lora_layers)
    assert dropout.use_pcg_dropout(model) == 0  # already swapped: nothing left to swap


def _run(url, name, model_dir, run_id, **changes):
    cfg = TrainSpec(dataset=name, model=str(model_dir), stage=1, run_id=run_id, epochs=1, batch_size=4,
                    lora_rank=8, lora_alpha=16, lora_dropout=0.2, seed=3, **SAMPLING, **changes)
    return train_stage(url, cfg)


def _adapter(run):
    from safetensors.torch import load_file

    return load_file(str(run.run_dir / "adapter" / "adapter_model.safetensors"))


def test_a_run_is_reproducible_from_its_seed_and_its_adapter_loads_back(world_dataset, tiny_model_dir):
    name, url = world_dataset
    a = _run(url, name, tiny_model_dir, "pcg-a")
    b = _run(url, name, tiny_model_dir, "pcg-b")
    torch_rng = _run(url, name, tiny_model_dir, "torch-rng", dropout_rng="torch")
    first, second, other = _adapter(a), _adapter(b), _adapter(torch_rng)
    assert first.keys() == second.keys() == other.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)  # same seed, same masks, same adapter
    assert any(not torch.equal(first[k], other[k]) for k in first)  # torch's own draws: other masks
    assert json.loads((a.run_dir / "all_results.json").read_text())["train_loss"] == a.metrics["train_loss"]

    from peft import PeftModel

    loaded = PeftModel.from_pretrained(load_vlm(str(tiny_model_dir)).model, str(a.run_dir / "adapter"))
    state = {k: v for k, v in loaded.state_dict().items() if "lora_" in k}
    assert len(state) == len(first)
    for key, value in first.items():
        match = [v for k, v in state.items() if k.replace(".default", "") == key]
        assert len(match) == 1 and torch.equal(match[0], value), key
