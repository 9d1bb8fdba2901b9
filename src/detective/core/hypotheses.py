"""The fixed vocabulary of hypotheses that checks move and reports name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    INTAKE = "intake"
    PIPELINE = "pipeline"
    LEARNING = "learning"
    ERROR_ANALYSIS = "error_analysis"
    CAPACITY = "capacity"
    EVALUATION_INTEGRITY = "evaluation_integrity"
    JUDGEMENT = "judgement"  # interventions on the causes the other stages found evidence for


@dataclass(frozen=True)
class HypothesisInfo:
    id: str
    title: str
    explanation: str
    stage: Stage
    #: A description of how or where the model fails (a failing slice, overfitting, a shift),
    #: not a cause with an intervention that removes it: never `supported` on its own, it is
    #: reported beside the verified cause that explains it.
    description: bool = False


def _h(
    id_: str, stage: Stage, title: str, explanation: str, *, description: bool = False
) -> HypothesisInfo:
    return HypothesisInfo(id_, title, explanation, stage, description)


_ALL = (
    _h(
        "normalization_mismatch",
        Stage.PIPELINE,
        "Inputs are not normalized the way the model expects",
        "The tensors reaching the model have a mean/std or value range that differs from what it "
        "was "
        "trained with or what its pretrained backbone expects (missing, doubled or wrong "
        "constants, "
        "[0,255] inputs, swapped channels).",
    ),
    _h(
        "preprocessing_parity",
        Stage.PIPELINE,
        "Training and evaluation preprocess images differently",
        "The same raw image becomes a different tensor at train time and at eval time (resolution, "
        "value range, channel order, normalization), so the model is evaluated on inputs it never "
        "saw.",
    ),
    _h(
        "label_misalignment",
        Stage.PIPELINE,
        "Labels do not belong to their images",
        "Images and labels were shuffled, sorted or indexed separately, so item i's label "
        "describes "
        "another image; the model cannot learn beyond chance on the affected part.",
    ),
    _h(
        "train_val_leakage",
        Stage.PIPELINE,
        "Validation images also appear in training",
        "Exact or near-duplicate images are shared between the splits, so validation overstates "
        "generalisation (or disagrees with itself when the duplicates carry different labels).",
    ),
    _h(
        "label_noise",
        Stage.ERROR_ANALYSIS,
        "A share of the labels is wrong",
        "Some given labels are wrong; the model is penalised for being right and learns the noise.",
    ),
    _h(
        "class_imbalance",
        Stage.PIPELINE,
        "Classes are imbalanced enough to distort training or metrics",
        "Some classes have far fewer examples; accuracy hides poor recall on them.",
    ),
    _h(
        "augmentation_breaks_labels",
        Stage.PIPELINE,
        "An augmentation changes what the label means",
        "A transform (a vertical flip of a 6, a crop that removes the object) produces images "
        "whose "
        "correct label is no longer the given one.",
    ),
    _h(
        "corrupt_inputs",
        Stage.PIPELINE,
        "Some inputs are corrupt or malformed",
        "Unreadable or truncated files, odd image modes, NaN/Inf tensors or wrong shapes reach "
        "the model.",
    ),
    _h(
        "lr_too_high",
        Stage.LEARNING,
        "The learning rate is too high",
        "Updates are too large: the loss oscillates, diverges or plateaus high; weights grow "
        "quickly.",
    ),
    _h(
        "lr_too_low",
        Stage.LEARNING,
        "The learning rate is too low",
        "Updates are too small: the loss barely moves within the training budget.",
    ),
    _h(
        "wrong_loss",
        Stage.LEARNING,
        "The loss does not fit the task or the model's outputs",
        "E.g. softmax before a loss that expects logits, MSE on class indices, mismatched class "
        "weights.",
    ),
    _h(
        "vanishing_gradients",
        Stage.LEARNING,
        "Gradients vanish before reaching the early layers",
        "Early layers receive gradients orders of magnitude smaller than late layers and barely "
        "learn.",
    ),
    _h(
        "exploding_gradients",
        Stage.LEARNING,
        "Gradients explode",
        "Gradient norms grow without bound or become NaN/Inf, destabilising training.",
    ),
    _h(
        "dead_units",
        Stage.LEARNING,
        "Many units are dead or saturated",
        "A large fraction of ReLU units never activate (or sigmoid/tanh units saturate), wasting "
        "capacity.",
    ),
    _h(
        "frozen_parameters",
        Stage.LEARNING,
        "Parameters that should train are frozen",
        "Layers have requires_grad=False or receive no gradient, so part of the model never "
        "learns.",
    ),
    _h(
        "underfitting",
        Stage.CAPACITY,
        "The model underfits",
        "Training accuracy is low: too little capacity, too little training, or an optimisation "
        "problem.",
    ),
    _h(
        "overfitting",
        Stage.CAPACITY,
        "The model overfits",
        "Training accuracy far exceeds validation accuracy beyond what the task explains.",
        description=True,
    ),
    _h(
        "eval_mode_bug",
        Stage.EVALUATION_INTEGRITY,
        "The model is evaluated in training mode",
        "Dropout or batch-norm behave as in training during evaluation, so predictions are noisy.",
    ),
    _h(
        "metric_bug",
        Stage.EVALUATION_INTEGRITY,
        "The reported metric is computed wrongly",
        "The number the user reports does not match what the predictions give, or the metric "
        "hides the "
        "failure (accuracy on an imbalanced set).",
    ),
    _h(
        "distribution_shift",
        Stage.EVALUATION_INTEGRITY,
        "Validation data differs from training data",
        "Class balance or image properties (brightness, contrast, size) shift between the "
        "splits: the raw val images themselves differ, not the pipeline.",
        # A description: every split differs a little, and on natural splits (val crops from
        # other regions of the same photographs) moment-matching val to train recovers much of
        # a clean model's gap too — no intervention separates a planted shift from the data's own.
        description=True,
    ),
    _h(
        "slice_failure",
        Stage.ERROR_ANALYSIS,
        "The model fails on an identifiable slice",
        "Errors concentrate in a slice of the data (a class, dark images, small objects) far "
        "above the "
        "overall error rate.",
        description=True,
    ),
    _h(
        "shortcut_learning",
        Stage.ERROR_ANALYSIS,
        "The model relies on context, not on the object (a shortcut)",
        "Something around the object (background, border, a watermark, the source) predicts the "
        "class in the training set but not in validation, and the model learned it instead of the "
        "object. Refuted when keeping the object and swapping its context for another class's "
        "leaves the predictions in place, or when the context is as informative in val as in "
        "train.",
    ),
)

VOCABULARY: dict[str, HypothesisInfo] = {h.id: h for h in _ALL}

# Symptoms that other causes produce: when both are proven, the cause is the finding to act on
# (fixing it removes the symptom; the reverse does not hold). Domain knowledge, not a fitted rule.
_OPTIMISATION = ("exploding_gradients", "vanishing_gradients", "dead_units", "frozen_parameters",
                 "wrong_loss", "lr_too_low", "lr_too_high", "normalization_mismatch")  # fmt: skip
CAUSED_BY: dict[str, frozenset[str]] = {
    # A model evaluated in train mode reports a metric that does not match a recomputation.
    "metric_bug": frozenset({"eval_mode_bug"}),
    # Low train accuracy is what every optimisation pathology and every label defect looks like;
    # so do inputs that carry no signal (unreadable, decoded blank): they cannot be fitted.
    "underfitting": frozenset((*_OPTIMISATION, "label_misalignment", "label_noise",
                               "augmentation_breaks_labels", "corrupt_inputs")),  # fmt: skip
    # 0-255 inputs make any sane LR too large; saturating activations make it look too small.
    "lr_too_high": frozenset({"normalization_mismatch", "exploding_gradients"}),
    # ... and blow up activations and gradients at any LR.
    "exploding_gradients": frozenset({"normalization_mismatch"}),
    # A double softmax flattens the gradients, so an LR range test asks for a larger LR.
    "lr_too_low": frozenset({"normalization_mismatch", "vanishing_gradients", "dead_units",
                             "wrong_loss"}),
    # Labels that do not belong to their images look like annotator noise.
    "label_noise": frozenset({"label_misalignment", "augmentation_breaks_labels"}),
    "dead_units": frozenset({"lr_too_high", "normalization_mismatch", "label_misalignment"}),
}

USER_PREFIX = "user:"


def describe(hypothesis_id: str) -> HypothesisInfo:
    """The vocabulary entry, or a neutral entry for a user's own hypothesis."""
    if hypothesis_id in VOCABULARY:
        return VOCABULARY[hypothesis_id]
    return HypothesisInfo(hypothesis_id, hypothesis_id.removeprefix(USER_PREFIX), "", Stage.INTAKE)
