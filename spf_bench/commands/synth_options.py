"""What the lab's commands (``synth lab``, ``synth table``) share: their common options, and
the parsing of an attribute of the world and of a list of metrics; and the options of a
customization set, which ``synth customset`` shares with the lab's customization mode."""

from __future__ import annotations

from spf_bench.core.errors import SpfError


def add_lab_options(parser, *, methods_default: str, methods_help: str, prompts_default: int, prompts_help: str) -> None:
    """The options every fine-tune-and-draw experiment takes; only the method list and the
    number of prompts differ between the lab and the table."""
    parser.add_argument("--target", default=None, help="ATTRIBUTE=VALUE every fine-tuning image shows (default glasses=yes; "
                                                         "correlation mode only)")
    parser.add_argument("--spurious", default=None, help="ATTRIBUTE=VALUE correlated with it (default background=green; "
                                                           "correlation mode only)")
    parser.add_argument("--customization", action="store_true",
                        help="fine-tune on a customization set (novel targets dealt in turn, few identities, biased attributes its "
                             "captions mostly leave unsaid; see --targets, --identities, --bias, --say-biased) against its "
                             "unbiased control, instead of on the --target/--spurious correlation; base prompts then ask for "
                             "another value of every biased attribute, and Pollution is the share drawn at the biased value")
    add_customization_options(parser, lab=True)
    parser.add_argument("--methods", default=methods_default, help=methods_help)
    parser.add_argument("--metrics", default="all", help="comma-separated suite metrics scored per method, or 'all' (default) or 'none'")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of every fine-tune (default 300)")
    parser.add_argument("--train-images", type=int, default=None,
                        help=f"images in the fine-tuning set (default {CORRELATION_IMAGES}; with --customization "
                             f"{CUSTOMIZATION_IMAGES}, the customization set's default)")
    parser.add_argument("--stage2-steps", type=int, default=None,
                        help="optimizer steps of stage 2 (ours, its ablations and variants; default: --steps)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of every whole-UNet fine-tune: naive, the control, ours' stage 1, TokenCompose "
                             "(default 1e-4; LoRA and AdaLoRA keep their adapter rate, 1e-3)")
    parser.add_argument("--lr-stage2", type=float, default=None,
                        help="learning rate of stage 2, whatever part trains (default: --lr, the rate of naive)")
    parser.add_argument("--prompts", type=int, default=prompts_default, help=prompts_help)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


CORRELATION_IMAGES, CUSTOMIZATION_IMAGES = 64, 112  # the latter is CustomSet's default, checked in the tests


def add_customization_options(parser, lab: bool = False) -> None:
    """A customization set's options (defaults: ``CustomSet``'s); ``lab``: for the lab's
    customization mode, where they apply only with ``--customization``."""
    only = " (with --customization)" if lab else ""
    parser.add_argument("--targets", default=None, help="comma-separated attributes taught, dealt in turn over the portraits"
                                                         + (" and the prompts" if lab else "") + f" (default: every novel attribute){only}")
    parser.add_argument("--identities", type=int, default=None, help=f"identities the portraits are drawn from (default 4){only}")
    parser.add_argument("--bias", action="append", default=None, metavar="ATTRIBUTE=VALUE:SHARE",
                        help="a biased attribute, repeatable (default: background=green:0.8, shirt=red:0.7, style=photo:0.7); "
                             f"--bias none for no bias{only}")
    parser.add_argument("--say-biased", type=float, default=None, help=f"chance a caption says a biased attribute (default 0.1){only}")


def customization_fields(args) -> dict:
    """The CustomSet fields the customization options give (those left out keep CustomSet's defaults)."""
    from spf_bench.world.custom_sets import Bias

    fields = {}
    if args.targets is not None:
        fields["targets"] = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    if args.identities is not None:
        fields["identities"] = args.identities
    if args.bias is not None:
        fields["biases"] = () if args.bias == ["none"] else tuple(Bias.parse(b) for b in args.bias)
    if args.say_biased is not None:
        fields["say_biased"] = args.say_biased
    return fields


def lab_design(args) -> dict:
    """The LabConfig fields that choose the lab's mode: ``correlation`` or ``customization``
    (and ``train_images``), each refusing the other mode's options in one sentence."""
    from spf_bench.lab.customization import Customization
    from spf_bench.world.sets import Correlation

    given = [flag for flag, value in (("--targets", args.targets), ("--identities", args.identities), ("--bias", args.bias),
                                      ("--say-biased", args.say_biased)) if value is not None]
    if args.customization:
        refused = [flag for flag, value in (("--target", args.target), ("--spurious", args.spurious)) if value is not None]
        if refused:
            raise SpfError(f"{refused[0]} sets the correlation mode's target or spurious attribute; with --customization the "
                           "targets are --targets and the biases --bias.")
        images = CUSTOMIZATION_IMAGES if args.train_images is None else args.train_images
        return {"customization": Customization(**customization_fields(args)), "train_images": images}
    if given:
        raise SpfError(f"{given[0]} describes a customization set; add --customization to fine-tune on one.")
    target = attribute_pair(args.target or "glasses=yes", "--target")
    spurious = attribute_pair(args.spurious or "background=green", "--spurious")
    if target[0] == spurious[0]:
        raise SpfError("--target and --spurious must name two different attributes.")
    images = CORRELATION_IMAGES if args.train_images is None else args.train_images
    return {"correlation": Correlation(*target, *spurious), "train_images": images}


def stage2_budget(args) -> dict:
    """The LabConfig fields of the fine-tunes' rate and stage 2's own budget that the command line
    gives; stage 2 takes naive's rate unless given its own."""
    if args.lr is not None and not args.lr > 0:
        raise SpfError(f"--lr must be a positive learning rate, got {args.lr}.")
    if args.stage2_steps is not None and args.stage2_steps < 1:
        raise SpfError(f"--stage2-steps must be at least 1, got {args.stage2_steps}.")
    if args.lr_stage2 is not None and not args.lr_stage2 > 0:
        raise SpfError(f"--lr-stage2 must be a positive learning rate, got {args.lr_stage2}.")
    lr_stage2 = args.lr if args.lr_stage2 is None else args.lr_stage2
    given = {"stage2_steps": args.stage2_steps, "lr_full": args.lr, "lr_stage2": lr_stage2}
    return {k: v for k, v in given.items() if v is not None}


def attribute_pair(text: str, flag: str) -> tuple[str, str]:
    from spf_bench.world.attributes import BY_NAME

    name, _, value = text.partition("=")
    if name not in BY_NAME or value not in BY_NAME[name].values:
        known = "; ".join(f"{a.name}: {', '.join(a.values)}" for a in BY_NAME.values())
        raise SpfError(f"{flag} '{text}' is not ATTRIBUTE=VALUE of the synthetic world ({known}).")
    return name, value


def metric_list(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if text.strip() in ("all", "none"):
        return known if text.strip() == "all" else ()
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise SpfError(f"--metrics '{text}' is not 'all', 'none' or a list of the suite's metrics ({', '.join(known)}).")
    return names
