"""Method registry: every name of the tables, clear errors, checkpoints given on the command
line or in a file, and LoRA / AdaLoRA adapters written by diffusers' and peft's own savers."""

from __future__ import annotations

import json

import pytest
import torch

from spf_bench.methods import registry as methods
from spf_bench.core.errors import SpfError
from spf_bench.methods.checkpoint_files import parse_checkpoint_args, read_methods_file
from spf_bench.methods.registry import build_method, get_method, known_methods

# tiny-network ops: one intra-op thread (see the single_thread fixture in conftest)
pytestmark = pytest.mark.usefixtures("single_thread")

TABLE_METHODS = ("base", "naive", "lora", "adalora", "ours", "ours-no-attn", "ours-no-unet", "ours-no-re",
                 "ours-no-sfcm", "ours-direct-clip", "stage2-full", "stage2-lora-xattn", "stage2-adapter-xattn",
                 "only-stage2")


def test_every_table_method_is_registered_with_what_it_needs():
    known = known_methods()
    assert set(TABLE_METHODS) <= set(known)
    assert known["base"].checkpoint is None
    assert known["ours"].recipe.init_from == "naive" and known["only-stage2"].recipe.init_from is None
    assert known["ours-no-sfcm"].recipe.overrides == {"no_sfcm": True}
    assert known["stage2-lora-xattn"].recipe.overrides == {"trainable": "lora-xattn"}


def test_unknown_method_and_missing_checkpoint_are_one_sentence(tmp_path):
    with pytest.raises(SpfError, match=r"Unknown method 'ourz'; known methods are: base, naive, lora") as err:
        get_method("ourz")
    assert str(err.value).endswith(".") and "\n" not in str(err.value)
    with pytest.raises(SpfError, match=r"'ours' needs a checkpoint .*--checkpoint ours=PATH"):
        build_method("ours", "tiny")
    with pytest.raises(SpfError, match="does not exist"):
        build_method("naive", "tiny", tmp_path / "nowhere")
    with pytest.raises(SpfError, match="not a diffusers pipeline folder"):
        build_method("naive", "tiny", tmp_path)


def test_checkpoints_from_command_line_and_methods_file(tmp_path):
    assert parse_checkpoint_args(["ours=/a/b", "lora=c.safetensors"]) == {"ours": tmp_path.__class__("/a/b"),
                                                                          "lora": tmp_path.__class__("c.safetensors")}
    with pytest.raises(SpfError, match="NAME=PATH"):
        parse_checkpoint_args(["ours"])
    with pytest.raises(SpfError, match="Unknown method 'nope'"):
        parse_checkpoint_args(["nope=x"])
    (tmp_path / "m.yaml").write_text("checkpoints:\n  ours: stage2\n  lora: /abs/lora.safetensors\n")
    assert read_methods_file(tmp_path / "m.yaml") == {"ours": tmp_path / "stage2", "lora": tmp_path.__class__("/abs/lora.safetensors")}
    (tmp_path / "m.json").write_text(json.dumps({"naive": "s1"}))
    assert read_methods_file(tmp_path / "m.json") == {"naive": tmp_path / "s1"}


def test_register_method_entry_point_with_lazy_builder():
    spec = methods.register_method("test-lazy-base", summary="the base model, built by a dotted path",
                                   build="spf_bench.methods.registry:build_base", replace=True)
    try:
        assert get_method("test-lazy-base") is spec and spec.builder() is methods.build_base
        with pytest.raises(SpfError, match="registered twice"):
            methods.register_method("test-lazy-base", summary="x", build=methods.build_base)
    finally:
        methods._METHODS.pop("test-lazy-base")


# ----------------------------------------------------------------------------- checkpoints

def _probe(unet):
    gen = torch.Generator().manual_seed(0)
    x, e = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, unet.config.cross_attention_dim, generator=gen)
    with torch.no_grad():
        return unet(x, torch.tensor([500]), e).sample


def _perturb(module, names=("lora_",)):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if any(n in name for n in names):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_pipeline_checkpoint_loads_its_own_unet(tmp_path):
    from spf_bench import zoo

    pipe = zoo.load("sd15", source="tiny")
    with torch.no_grad():
        pipe.unet.conv_in.weight.add_(0.5)
    pipe.save_pretrained(str(tmp_path / "stage1"), safe_serialization=True)
    model = build_method("naive", "tiny", tmp_path / "stage1")
    assert torch.equal(model.pipe.unet.conv_in.weight, pipe.unet.conv_in.weight)
    assert model.checkpoint_sha256 and model.fingerprint != build_method("base", "tiny").fingerprint


def test_lora_file_saved_by_diffusers_gives_the_adapted_unet(tmp_path):
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from spf_bench import zoo

    pipe = zoo.load("sd15", source="tiny")
    base = _probe(pipe.unet)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    _perturb(pipe.unet)
    adapted = _probe(pipe.unet)
    StableDiffusionPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=get_peft_model_state_dict(pipe.unet))
    file = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    assert file.is_file()
    for checkpoint in (file, tmp_path / "lora"):  # the file itself, or the folder diffusers wrote
        out = _probe(build_method("lora", "tiny", checkpoint).pipe.unet)
        assert torch.allclose(out, adapted, atol=1e-4) and not torch.allclose(out, base, atol=1e-2)


@pytest.mark.parametrize("kind", ["adalora", "lora"])
def test_peft_adapter_folder_saved_by_peft_gives_the_adapted_unet(tmp_path, kind):
    from peft import AdaLoraConfig, LoraConfig, get_peft_model

    from spf_bench import zoo

    unet = zoo.load("sd15", source="tiny").unet
    base = _probe(unet)
    if kind == "adalora":
        config = AdaLoraConfig(init_r=6, target_r=3, total_step=10, target_modules=["to_q", "to_k", "to_v"])
    else:
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["to_k", "to_v"])
    peft_model = get_peft_model(unet, config)
    _perturb(peft_model)
    peft_model.eval()
    adapted = _probe(peft_model)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    model = build_method(kind, "tiny", tmp_path / "adapter")
    out = _probe(model.pipe.unet)
    assert type(model.pipe.unet).__name__ == "UNet2DConditionModel"  # merged: no adapter layers left
    assert torch.allclose(out, adapted, atol=1e-4) and not torch.allclose(out, base, atol=1e-2)


def test_adapter_that_fits_nothing_is_refused(tmp_path):
    (tmp_path / "x.bin").write_text("nope")
    with pytest.raises(SpfError, match="neither a diffusers LoRA"):
        build_method("lora", "tiny", tmp_path / "x.bin")


def test_adapter_checkpoint_is_applied(tmp_path, tiny_pipe):
    """A stage-2 folder with cross-attention adapters generates with them, not without."""
    import copy

    import torch
    from safetensors.torch import save_file

    from spf_bench.methods.registry import build_method
    from spf_train.xattn_adapter import ADAPTER_FILE, adapter_state_dict, add_xattn_adapters

    folder = tmp_path / "stage2-adapter"
    tiny_pipe.save_pretrained(str(folder))
    unet = copy.deepcopy(tiny_pipe.unet)
    add_xattn_adapters(unet)
    state = {k: torch.randn_like(v) * 0.1 for k, v in adapter_state_dict(unet).items()}
    save_file(state, str(folder / ADAPTER_FILE))

    plain_folder = tmp_path / "same-weights-without-adapter"
    tiny_pipe.save_pretrained(str(plain_folder))
    with_adapter = build_method("stage2-adapter-xattn", "tiny", folder).pipe.unet
    plain = build_method("stage2-adapter-xattn", "tiny", plain_folder).pipe.unet
    latents, text = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with torch.no_grad():
        a = with_adapter(latents, 10, encoder_hidden_states=text).sample
        b = plain(latents, 10, encoder_hidden_states=text).sample
    assert not torch.allclose(a, b, atol=1e-5)
