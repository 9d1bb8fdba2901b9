"""Optional per-failure hypotheses from a vision-language model (a multimodal GGUF + projector).

The model is shown one misclassified image and its measured facts, and must first describe what
is literally in the image, then reason about the confusion, then state a hypothesis; its claims
go through the same verifier as cluster summaries (property claims against this image's
standardized properties versus the successes, confusion claims against its true → predicted
pair). Tested offline with a scripted backend only: no multimodal GGUF small enough for CI exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from detective.llm.backend import Backend, LlmOutputError
from detective.llm.summary import (
    PROPERTY_NAMES,
    ClusterSummary,
    ConfusionClaim,
    Direction,
    FixKind,
    PropertyClaim,
    SummaryLimits,
)
from detective.llm.verify import CheckedClaim, verify

if TYPE_CHECKING:
    from detective.analysis.clusters import ClusterFacts
    from detective.core.progress import Progress

VISION_PROMPT_VERSION = 1


@dataclass(frozen=True)
class FailureFacts:
    split: str
    index: int
    true: str
    pred: str
    confidence: float
    #: property -> (this image's value, mean over successes, std over successes)
    properties: Mapping[str, tuple[float, float, float]]
    share_of_errors: float = 0.0

    @property
    def target_id(self) -> str:
        """What a review of this failure's hypothesis refers to (target_kind "failure")."""
        return f"{self.split}:{self.index}"

    def as_cluster(self) -> ClusterFacts:
        """The same facts in the shape the verifier reads (z-scores as effect sizes)."""
        from detective.analysis.clusters import ClusterFacts, PairCount, PropertyEffect

        effects = tuple(
            PropertyEffect(name, v, m, (v - m) / s if s > 1e-12 else 0.0, "successes")
            for name, (v, m, s) in sorted(self.properties.items())
        )
        return ClusterFacts(
            id=self.target_id,
            rank=0,
            size=1,
            share_of_errors=self.share_of_errors,
            cohesion=float("nan"),
            pairs=(PairCount(self.true, self.pred, 1, 1.0),),
            properties=effects,
            members=(self.index,),
        )


@dataclass(frozen=True)
class FailureHypothesis:
    description: str  # what is literally in the image
    reasoning: str
    hypothesis: str
    properties: tuple[PropertyClaim, ...] = ()
    confusions: tuple[ConfusionClaim, ...] = ()


@dataclass(frozen=True)
class FailureHypothesisRecord:
    target_id: str
    model: str
    hypothesis: FailureHypothesis
    checks: tuple[CheckedClaim, ...]
    cached: bool = False


def vision_schema(classes: Sequence[str], limits: SummaryLimits) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": limits.text_chars}
    names = [str(c) for c in classes] or ["?"]
    return {
        "type": "object",
        "properties": {
            "description": text,
            "reasoning": text,
            "hypothesis": text,
            "properties": {
                "type": "array",
                "maxItems": limits.max_claims,
                "items": {
                    "type": "object",
                    "properties": {
                        "property": {"enum": list(PROPERTY_NAMES)},
                        "direction": {"enum": [d.value for d in Direction]},
                    },
                    "required": ["property", "direction"],
                    "additionalProperties": False,
                },
            },
            "confusions": {
                "type": "array",
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "properties": {"true": {"enum": names}, "pred": {"enum": names}},
                    "required": ["true", "pred"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["description", "reasoning", "hypothesis", "properties", "confusions"],
        "additionalProperties": False,
    }


def vision_prompt(facts: FailureFacts) -> str:
    measured = {
        name: {
            "value": round(v, 4),
            "successes_mean": round(m, 4),
            "z_score": round((v - m) / s, 2) if s > 1e-12 else 0.0,
        }
        for name, (v, m, s) in sorted(facts.properties.items())
    }
    return (
        "The image shows a validation example an image classifier got wrong.\n"
        f"Given label: {facts.true}. Predicted: {facts.pred} "
        f"(confidence {facts.confidence:.2f}).\n"
        f"Measured image properties versus correctly classified images: {json.dumps(measured)}\n"
        'First, in "description", describe only what is literally visible in the image. '
        'Then, in "reasoning", explain what could make it look like the predicted class. '
        'Then give your "hypothesis" for the failure. List only property claims whose measured '
        "z_score is at least 0.5 in magnitude. Answer with one JSON object.\nJSON:\n"
    )


def parse_failure(text: str) -> FailureHypothesis:
    try:
        data = json.loads(text)
        return FailureHypothesis(
            description=" ".join(str(data["description"]).split()),
            reasoning=" ".join(str(data["reasoning"]).split()),
            hypothesis=" ".join(str(data["hypothesis"]).split()),
            properties=tuple(
                PropertyClaim(str(p["property"]), Direction(p["direction"]))
                for p in data.get("properties", ())
                if str(p["property"]) in PROPERTY_NAMES
            ),
            confusions=tuple(
                ConfusionClaim(str(c["true"]), str(c["pred"])) for c in data.get("confusions", ())
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LlmOutputError(f"the model's answer is not a usable failure hypothesis ({e})") from e


def check_failure(
    hypothesis: FailureHypothesis, facts: FailureFacts, classes: Sequence[str] = ()
) -> tuple[CheckedClaim, ...]:
    as_summary = ClusterSummary(
        title="",
        cause=f"{hypothesis.reasoning} {hypothesis.hypothesis}",
        fix_kind=FixKind.OTHER,
        fix="",
        properties=hypothesis.properties,
        confusions=hypothesis.confusions,
    )
    return verify(as_summary, facts.as_cluster(), tuple(classes))


def hypothesize_failure(
    facts: FailureFacts,
    image_png: bytes,
    backend: Backend,
    classes: Sequence[str],
    *,
    cache: Any = None,
    progress: Progress | None = None,
    limits: SummaryLimits | None = None,
) -> FailureHypothesisRecord:
    """One failure's hypothesis, verified; cached by (model, prompt, image)."""
    from detective.core.serde import from_jsonable, to_jsonable

    limits = limits or SummaryLimits()
    prompt = vision_prompt(facts)
    schema_ = vision_schema(classes, limits)
    h = hashlib.sha256(
        json.dumps([VISION_PROMPT_VERSION, backend.key, prompt, schema_]).encode() + image_png
    )
    key = "llm:failure-hypothesis:" + h.hexdigest()[:32]
    stored = cache.kv_get(key) if cache is not None else None
    if stored is not None:
        hyp = from_jsonable(FailureHypothesis, json.loads(stored))
        return FailureHypothesisRecord(
            facts.target_id, backend.name, hyp, check_failure(hyp, facts, classes), True
        )

    def on_text(_piece: str) -> None:
        if progress is not None:
            progress.check_cancelled()

    text = backend.complete_json(
        prompt, schema_, max_tokens=limits.max_tokens, on_text=on_text, images=(image_png,)
    )
    hyp = parse_failure(text)
    if cache is not None:
        cache.kv_set(key, json.dumps(to_jsonable(hyp)))
    return FailureHypothesisRecord(
        facts.target_id, backend.name, hyp, check_failure(hyp, facts, classes)
    )
