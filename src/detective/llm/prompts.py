"""Prompts built only from a cluster's measured facts: the model is asked to explain numbers it
is shown, never to free-associate about data it cannot see."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detective.analysis.clusters import ClusterFacts

PROMPT_VERSION = 1  # part of the cache key: bump when the wording changes

_INSTRUCTIONS = """You are helping an ML engineer understand why an image classifier fails.
Below are MEASUREMENTS of one cluster of misclassified validation images. Use only these numbers.
Write a short title, a hypothesis for the cause, and a concrete fix (augmentation, data
collection, relabelling or preprocessing). List in "properties" only image properties whose
effect size (Cohen's d versus correctly classified images) is at least 0.5 in magnitude, with
direction "lower" for negative d and "higher" for positive d. List in "confusions" only
true -> predicted pairs that appear in the measurements. Do not invent facts.
Answer with one JSON object."""


def facts_json(facts: ClusterFacts) -> dict[str, object]:
    """The measured facts a prompt may state (rounded; no member lists)."""
    return {
        "failures_in_cluster": facts.size,
        "share_of_all_errors": round(facts.share_of_errors, 3),
        "cohesion_silhouette": round(facts.cohesion, 3),
        "true_to_predicted": [
            {"true": p.true, "pred": p.pred, "count": p.count, "share": round(p.share, 3)}
            for p in facts.pairs
        ],
        "image_properties_vs_successes": [
            {
                "property": e.name,
                "cluster_mean": round(e.cluster_mean, 4),
                "reference_mean": round(e.reference_mean, 4),
                "cohens_d": round(e.effect_size, 2),
            }
            for e in facts.properties
        ],
        "slices": [
            {
                "slice": s.description,
                "images": s.size,
                "error_rate": round(s.error_rate, 3),
                "times_overall_error_rate": round(s.lift, 2),
            }
            for s in facts.slices
        ],
    }


def cluster_prompt(facts: ClusterFacts) -> str:
    return f"{_INSTRUCTIONS}\n\nMEASUREMENTS:\n{json.dumps(facts_json(facts), indent=1)}\n\nJSON:\n"
