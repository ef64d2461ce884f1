"""``spf-train sfcm``: PNGs of the soft map, the phrase maps and the SFCM for one prompt."""


def _run(args) -> int:
    from spf_train.diagnostics import write_sfcm_diagnostics

    written = write_sfcm_diagnostics(
        args.checkpoint, args.prompt, args.target, args.out, base_model=args.base_model, clip_model=args.clip_model,
        seed=args.seed, steps=args.steps, timestep=args.timestep, phrase_split=args.phrase_split,
    )
    print(f"sfcm: wrote {len(written)} files to {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("sfcm", help="Draw the SFCM maps of a checkpoint for one prompt.",
                                   description="Draw the soft map, phrase maps and SFCM (Fig. 3 / 4) over a generated portrait.")
    parser.add_argument("--checkpoint", required=True, help="a diffusers pipeline folder (stage-1 or stage-2 output) or tiny/random/pretrained")
    parser.add_argument("--prompt", required=True, help="the base caption c_b")
    parser.add_argument("--target", required=True, help="the target caption c_t")
    parser.add_argument("--out", default="sfcm-maps", help="output folder for the PNGs")
    parser.add_argument("--base-model", default="tiny", help="the original weights of the reference path")
    parser.add_argument("--clip-model", default="tiny", help="CLIP for the relevance weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the portrait's noise (default 0)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps for the portrait")
    parser.add_argument("--timestep", type=int, default=500, help="the training timestep the maps are taken at")
    parser.add_argument("--phrase-split", default="comma-and", choices=("comma-and", "comma"),
                        help="split c_b on commas and 'and' (default) or on commas only")
    parser.set_defaults(func=_run)
