"""The suite's own methods: one record each (summary, label, paper rows, builder, recipe).

Rows of the paper's tables: Tab. 1 compares the baselines and ablates ours, Tab. 4 varies
what stage 2 trains, Tab. 5 which stages run. Each row's label is the one its table prints.
"""

from __future__ import annotations

from spf_bench.methods.registry import (
    ADALORA,
    LORA,
    PIPELINE,
    PaperRow,
    TrainRecipe,
    build_adapter,
    build_base,
    build_pipeline_checkpoint,
    register_method,
)


def _tab1(position: int, label: str, section: str) -> PaperRow:
    return PaperRow("tab1", position, label, section)


def _stage2(summary: str, label: str, rows: tuple[PaperRow, ...], init_from: str | None = "naive", **overrides) -> dict:
    return dict(summary=summary, build=build_pipeline_checkpoint, checkpoint=PIPELINE, label=label, paper_rows=rows,
                recipe=TrainRecipe("stage2", overrides, init_from))


def _ablation(position: int, summary: str, label: str, **overrides) -> dict:
    return _stage2(summary, label, (_tab1(position, label, "Ablations"),), **overrides)


register_method("base", summary="the original model given the full caption", build=build_base, draws_originals=True,
                label="Base model (no fine-tuning)", paper_rows=(_tab1(0, "Base model (no fine-tuning)", "Baselines"),))
register_method("naive", summary="stage 1 only: full-UNet fine-tuning with L_diff", build=build_pipeline_checkpoint,
                checkpoint=PIPELINE, recipe=TrainRecipe("stage1"), label="Naive fine-tuning",
                paper_rows=(_tab1(1, "Naive fine-tuning", "Baselines"),
                            PaperRow("tab5", 1, "Only stage 1 (naive fine-tuning)", "Stages")))
register_method("lora", summary="peft LoRA on the UNet attention, trained with L_diff", build=build_adapter,
                checkpoint=LORA, recipe=TrainRecipe("lora"), label="LoRA", paper_rows=(_tab1(3, "LoRA", "Baselines"),))
register_method("adalora", summary="peft AdaLoRA on the UNet attention, trained with L_diff", build=build_adapter,
                checkpoint=ADALORA, recipe=TrainRecipe("adalora"), label="AdaLoRA",
                paper_rows=(_tab1(2, "AdaLoRA", "Baselines"),))
register_method("ours", proposed=True, **_stage2("SPF-Portrait: stage 1 then dual-path stage 2 on cross-attention", "Ours", (
    _tab1(6, "Ours", "Ours"), PaperRow("tab4", 4, "Cross-attention (ours)", "Stage 2"),
    PaperRow("tab5", 3, "Stage 1 & 2 (ours)", "Stages"))))
register_method("ours-no-attn", **_ablation(7, "ablation: without L_attn", "Ours (w/o L_attn)", no_attn=True))
register_method("ours-no-unet", **_ablation(8, "ablation: without L_unet", "Ours (w/o L_unet)", no_unet=True))
register_method("ours-no-re", **_ablation(9, "ablation: without L_re", "Ours (w/o L_re)", no_re=True))
register_method("ours-no-sfcm", **_ablation(10, "ablation: without SFCM (M = 0)", "Ours (w/o SFCM)", no_sfcm=True))
# The map itself under test: everything as ours but M (M = 0 is ours-no-sfcm above).
register_method("ours-mask-oracle", **_stage2("M = the ground-truth target region (synthetic world sets only)",
                                              "Ours (M = ground-truth region)", (), mask_variant="oracle"))
register_method("ours-mask-inverted", **_stage2("M = 1 - SFCM", "Ours (M = 1 - SFCM)", (), mask_variant="inverted"))
register_method("ours-mask-ones", **_stage2("M = 1: no alignment anywhere", "Ours (M = 1)", (), mask_variant="ones"))
# The reconstruction's marked choices of the map (METHOD.md), each flipped alone, so the lab can
# measure whether the unmarked text's other reading would change anything.
register_method("ours-exclusion-sum", **_stage2("marked choice: Eq. 10's exclusion map as the plain sum clipped at 1",
                                                "Ours (X = plain sum)", (), exclusion_norm="none"))
register_method("ours-mask-area", **_stage2("marked choice: M resized to each layer's grid by area averaging",
                                            "Ours (M resized by area)", (), mask_resize="area"))
register_method("ours-direct-clip", **_ablation(11, "ablation: L_clip (Eq. 14) instead of L_re",
                                                "Ours (L_clip instead of L_re)", direct_clip=True))
register_method("stage2-full", **_stage2("Tab. 4: stage 2 training the full UNet", "Stage 2: full weights",
                                         (PaperRow("tab4", 1, "Full weights", "Stage 2"),), trainable="full"))
register_method("stage2-lora-xattn", **_stage2("Tab. 4: stage 2 training a LoRA on cross-attention",
                                               "Stage 2: LoRA on cross-attention",
                                               (PaperRow("tab4", 2, "LoRA on cross-attention", "Stage 2"),),
                                               trainable="lora-xattn"))
register_method("stage2-adapter-xattn", **_stage2("Tab. 4: stage 2 training an adapter on cross-attention",
                                                  "Stage 2: adapter on cross-attention",
                                                  (PaperRow("tab4", 3, "Adapter on cross-attention", "Stage 2"),),
                                                  trainable="adapter-xattn"))
register_method("only-stage2", **_stage2("Tab. 5: stage 2 from the original weights", "Only stage 2",
                                         (PaperRow("tab5", 2, "Only stage 2", "Stages"),), init_from=None))
# Sets drawn by the base model carry no grounding masks: the automatic TokenCompose checkpoint
# grounds subject and target attribute at portrait-layout points with the zoo's SAM.
register_method("tokencompose", summary="TokenCompose: fine-tuning with token- and pixel-level grounding losses",
                build=build_pipeline_checkpoint, checkpoint=PIPELINE, label="TokenCompose",
                recipe=TrainRecipe("tokencompose", {"missing_grounding": "layout-sam"}),
                paper_rows=(_tab1(4, "TokenCompose", "Baselines"),))
register_method("magnet", summary="Magnet: training-free binding vectors on the subject's text embedding",
                build="spf_bench.methods.magnet:build_magnet", label="Magnet",
                paper_rows=(_tab1(5, "Magnet", "Baselines"),))
