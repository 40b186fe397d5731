"""gender-cls train-verifier, verify and evaluate-verifier: face verification."""

from __future__ import annotations

import json
import sys

import rich_click as click

from gender_cls.cli.common import (
    CONTEXT,
    VERBOSE_OPTION,
    Finite,
    handle_errors,
    model_path_option,
    quiet_tensorflow,
    setup_logging,
)
from gender_cls.config import (
    AGGREGATES,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    VerifierOptions,
)
from gender_cls.errors import UserError

LOSSES = ("cosface", "triplet", "distill")
GALLERY_OPTION = click.option("--gallery", required=True, help="Known people: <person>/*.jpg.")


def _aggregate_option(default):
    return click.option("--aggregate", type=click.Choice(AGGREGATES), default=default,
                        show_default="the model's" if default is None else True,
                        help="A probe against an identity: its best (max) or mean similarity "
                             "over that identity's gallery images.")  # fmt: skip


@click.command("train-verifier", context_settings=CONTEXT)
@click.option("--data_path", required=True, help="Identity folders: <person>/*.jpg.")
@click.option("--output_dir", default="runs/verifier", help="Run directory to write.")
@click.option("--backbone", default="dlib_face_resnet",
              help="Any backbone of train_model.py; the default, dlib's face embedding, matches "
                   "faces before any training (offline).")  # fmt: skip
@click.option(
    "--weights",
    default="imagenet",
    help="imagenet: the backbone's pretrained weights (offline for dlib_face_resnet and "
    "efficientnet_lite0/1/2), none (from scratch) or a local .h5 file.",
)
@click.option("--alpha", type=Finite(), default=0.35, help="MobileNet width multiplier.")
@click.option("--image_size", type=int, default=None, show_default="150 for dlib_face_resnet, else 96",
              help="Square input size.")  # fmt: skip
@click.option(
    "--epochs",
    type=click.IntRange(min=0),
    default=None,
    show_default="0 for a backbone with a face embedding of its own, else 30",
    help="Training epochs (cosine schedule); 0 keeps the backbone's own embedding as it comes "
    "(dlib_face_resnet) and only tunes the threshold. 30 on Lite0 took 13 minutes on 2 CPU cores.",
)
@click.option("--face_crop/--no-face_crop", default=None,
              show_default="on where the backbone has a face embedding of its own",
              help="Align every face first (training, tuning, gallery and probes alike; the run "
                   "records it).")  # fmt: skip
@click.option("--batch_size", type=click.IntRange(min=1), default=32, help="Images per batch.")
@click.option("--lr", type=Finite(), default=1e-3,
              help="Peak learning rate (from scratch, 3e-3 with 120 epochs did best).")  # fmt: skip
@click.option(
    "--embedding_dim", type=click.IntRange(min=1), default=128, help="Size of the embedding."
)
@click.option("--loss", type=click.Choice(LOSSES), default="cosface",
              help="cosface (an additive cosine margin over the training people), triplet "
                   "(semi-hard triplets in batches of --images_per_person images per person) or "
                   "distill (each distorted face mapped onto the untrained embedding of its "
                   "clean self; dlib_face_resnet).")  # fmt: skip
@click.option("--margin", type=Finite(), default=0.35, help="CosFace's additive cosine margin.")
@click.option("--scale", type=Finite(), default=30.0, help="CosFace's logit scale.")
@click.option("--triplet_margin", type=Finite(), default=0.2,
              help="The triplet loss' margin, on squared distances between unit embeddings.")  # fmt: skip
@click.option("--images_per_person", type=int, default=4,
              help="Triplet loss: images of one person drawn together; divides --batch_size.")  # fmt: skip
@click.option(
    "--val_people",
    type=Finite(),
    default=0.2,
    help="Share of the people held out (never trained on) to tune the threshold.",
)
@click.option(
    "--distort_probability",
    type=Finite(),
    default=0.5,
    help="Share of training images given one of gender-cls distort's distortions.",
)
@click.option("--flip_average/--no_flip_average", default=True, show_default=True,
              help="Embed each image and its mirror image and average the two (at tuning, "
                   "verify and evaluate-verifier alike); steadier on held-out people.")  # fmt: skip
@_aggregate_option("max")
@click.option("--far", type=Finite(0, 1), default=1e-3, show_default=True,
              help="The match threshold is chosen on the held-out people to accept at most this "
                   "share of other people's faces (false accept rate).")  # fmt: skip
@click.option("--seed", type=int, default=42, help="Seeds the split of people and training.")
@click.option("--overwrite", is_flag=True, help="Replace a run already in --output_dir.")
@VERBOSE_OPTION
@handle_errors
def train_verifier_command(data_path, output_dir, backbone, weights, alpha, image_size, epochs,
                           face_crop, batch_size, lr, embedding_dim, loss, margin, scale, triplet_margin,
                           images_per_person, val_people, distort_probability, flip_average,
                           aggregate, far, seed, overwrite, verbose) -> None:  # fmt: skip
    """A face embedding for identity folders: dlib's as it comes by default, or trained (CosFace,
    triplets, or distillation towards the clean faces); its match threshold tuned on people held
    out of training; writes embedder.keras, base.weights.h5 and verifier.json.

    \\b
    gender-cls train-verifier --data_path ../shared/data/identities --output_dir runs/verifier
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.verify.train import (  # imports TensorFlow: loaded on use
        default_epochs,
        train_verifier,
    )

    epochs = default_epochs(backbone) if epochs is None else epochs
    config = RunConfig(
        DataConfig(data_path, image_size=image_size, batch_size=batch_size, seed=seed),
        AugmentConfig(rotation_range=10.0, zoom_range=0.1, width_shift_range=0.05,
                      height_shift_range=0.05, distort_probability=distort_probability),
        ModelConfig(backbone=backbone, weights=weights, alpha=alpha),
        TrainConfig(output_dir=output_dir, head_epochs=epochs, lr=lr, schedule="cosine"),
    )  # fmt: skip
    options = VerifierOptions(embedding_dim, margin, scale, val_people, aggregate, loss,
                              images_per_person, triplet_margin, flip_average, face_crop,
                              far)  # fmt: skip
    card = train_verifier(config, options, verbose=2, overwrite=overwrite)
    click.echo(f"trained in {card['seconds']:.0f}s on {len(card['train_people'])} people; "
               f"threshold {card['threshold']:.3f} ({card['threshold_source']}); wrote "
               f"{output_dir}")  # fmt: skip
    held = card["held_out_metrics"]
    click.echo(f"held-out people (probes clean and distorted): ROC AUC {held['roc_auc']:.3f}, "
               f"accuracy {held['accuracy']:.3f} at the threshold")  # fmt: skip


@click.command("verify", context_settings=CONTEXT)
@model_path_option("A train-verifier run directory.")
@GALLERY_OPTION
@click.option("--probe", required=True, help="The image to match.")
@_aggregate_option(None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@VERBOSE_OPTION
@handle_errors
def verify_command(model_path, gallery, probe, aggregate, as_json, verbose) -> None:
    """Match one probe image to the gallery: the best identity, its similarity, match or not.

    \\b
    gender-cls verify --model_path runs/verifier --gallery people/ --probe photo.jpg
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.verify.verifier import Verifier  # imports TensorFlow: loaded on use

    verifier = Verifier(model_path, aggregate)
    verifier.enrol(gallery)
    found = verifier.match(probe)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2))
        return
    verdict = "match" if found.match else "no match (unknown person)"
    at = f" at a false accept rate of {found.far:g}" if found.far is not None else ""
    click.echo(f"{verdict}: best {found.identity}, similarity {found.similarity:.3f} "
               f"(threshold {found.threshold:.3f}{at})  {probe}")  # fmt: skip


@click.command("evaluate-verifier", context_settings=CONTEXT)
@model_path_option(
    "A train-verifier run directory; with --pairs also the name of a backbone with "
    "a face embedding of its own (dlib_face_resnet), scored as it comes."
)
@click.option("--gallery", help="Known people: <person>/*.jpg (with --probes).")
@click.option(
    "--probes",
    help="Probes as <person>/*.jpg; people absent from the gallery are impostors; "
    "names from gender-cls distort (<stem>_<kind>.jpg) are reported per kind.",
)
@click.option("--pairs", "pairs_file", help="A pairs file: LFW's pairs.txt as published, or a CSV "
              "path_a,path_b,same[,fold] (with --images).")  # fmt: skip
@click.option(
    "--images", help="The folder the pairs name their images in (LFW: <name>/<name>_NNNN.jpg)."
)
@click.option("--folds", type=click.IntRange(min=2), default=10,
              help="A CSV without a fold column: folds cut by row order.")  # fmt: skip
@click.option("--output_dir", default="verification_results", help="Where the results go.")
@_aggregate_option(None)
@VERBOSE_OPTION
@handle_errors
def evaluate_verifier_command(model_path, gallery, probes, pairs_file, images, folds, output_dir,
                              aggregate, verbose) -> None:  # fmt: skip
    """Measure a verifier. With --gallery/--probes: accuracy, precision, recall, F1, ROC AUC, TAR
    at FAR 1e-2/1e-3 and top-1 identification, overall and per distortion kind. With --pairs and
    --images: the pairs protocol (LFW's View 2: each fold's threshold chosen on the other folds;
    accuracy mean +- std, ROC AUC, EER, TAR at FAR). metrics.json, a CSV and plots in --output_dir.

    \b
    gender-cls evaluate-verifier --model_path runs/verifier --gallery people/ --probes probes/
    gender-cls evaluate-verifier --model_path dlib_face_resnet --pairs pairs.txt --images lfw/
    """
    if bool(pairs_file) == bool(gallery or probes):
        raise UserError("pass --gallery and --probes, or --pairs and --images")
    if pairs_file and not images:
        raise UserError("--pairs needs --images, the folder its images are in")
    if not pairs_file and not (gallery and probes):
        raise UserError("--gallery and --probes go together")
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    if pairs_file:
        from gender_cls.verify.evaluate import evaluate_pairs  # imports TensorFlow: on use

        m = evaluate_pairs(model_path, pairs_file, images, output_dir, folds)
        tar = m["tar_at_far"]
        click.echo(f"{m['pairs']} pairs ({m['same_pairs']} same, {m['different_pairs']} "
                   f"different) in {m['folds']} folds; no face found in {m['no_face']} of "
                   f"{m['images']} images (embedded whole)\n"
                   f"accuracy {m['accuracy_mean']:.4f} +- {m['accuracy_std']:.4f}  ROC AUC "
                   f"{m['roc_auc']:.4f}  EER {m['eer']:.4f}  TAR@FAR1e-3 {tar['0.001']:.4f}  "
                   f"TAR@FAR1e-2 {tar['0.01']:.4f}  threshold {m['threshold']:.4f}\n"
                   f"wrote {output_dir}")  # fmt: skip
        return
    from gender_cls.verify.evaluate import evaluate_verifier  # imports TensorFlow: loaded on use

    result = evaluate_verifier(model_path, gallery, probes, output_dir, aggregate)
    header = f"{'probes':<11}{'n':>6}{'acc':>8}{'F1':>8}{'AUC':>8}{'TAR@1e-3':>10}{'top-1':>8}"
    lines = [header]
    for name, m in [("all", result["overall"]), *result["per_kind"].items()]:
        cells = [m["accuracy"], m["f1"], m["roc_auc"], m["tar_at_far_1e-3"], m["top1_accuracy"]]
        text = "".join(f"{v:>8.3f}" if v is not None else f"{'n/a':>8}" for v in cells)
        lines.append(f"{name:<11}{m['probes']:>6}{text}")
    click.echo("\n".join(lines) + f"\nwrote {output_dir}")


@click.command("embed", context_settings=CONTEXT)
@model_path_option(
    "A train-verifier run directory, or the name of a backbone with a face embedding "
    "of its own (dlib_face_resnet)."
)
@click.option("--images", required=True, help="A folder of images (searched recursively).")
@click.option("--output", required=True, help="Where the embeddings go: a .npz file, or .parquet "
              "(needs pyarrow).")  # fmt: skip
@VERBOSE_OPTION
@handle_errors
def embed_command(model_path, images, output, verbose) -> None:
    """One unit-length embedding per image, with its path relative to --images, through the
    model's face crop (no face found: the whole image, listed). The .npz holds `paths` and
    `embeddings` (N x D float32); the .parquet, columns `path` and `embedding`.

    \b
    gender-cls embed --model_path dlib_face_resnet --images photos/ --output photos.npz
    """
    quiet_tensorflow(verbose)
    setup_logging(verbose)
    from gender_cls.verify.embeddings_file import (  # imports TensorFlow: on use
        embed_folder,
        folder_images,
    )
    from gender_cls.verify.verifier import FaceEmbedder

    files = folder_images(images)
    faces = FaceEmbedder.open(model_path)
    with click.progressbar(length=len(files), label="embedding", file=sys.stderr) as bar:
        done = embed_folder(faces, images, output, files, progress=bar.update)
    for path, reason in done.unreadable:
        click.echo(f"skipped {path}: {reason}", err=True)
    click.echo(f"{done.embedded} embeddings of {done.dimensions} dimensions in {done.output}; "
               f"no face found in {len(done.no_face)} (embedded whole), "
               f"{len(done.unreadable)} unreadable")  # fmt: skip
