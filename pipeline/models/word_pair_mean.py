"""``word_pair_mean``: the two models whose mean scored best on streams
(docs/experiments/real-speech-streams.md, "Every unknown word"), as one committee:
``embedding_conv`` over the speech embedding's 9 windows (the real-speech preset's model) and
``linear_head`` over the whole joined vector (the real-speech-pair preset's), for
``features.preprocess: embedding_efficientword``. Each head minimises its own cross entropy, so
training is the two models trained apart on the same batches; the scores are the mean of their
softmaxes, one export that the DAG freezes and streams. (``word_pair_conv`` joins the same parts
under one dense layer: a mean of logits, trained together, which did worse on streams.)"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import integer, param
from pipeline.models.base import ModelSpec, stack_heads
from pipeline.models.embedding_conv import conv_classifier
from pipeline.models.linear_head import logistic_regression
from pipeline.models.word_pair_conv import WordPairConvOptions, split_pair


@dataclass(frozen=True)
class WordPairMeanOptions(WordPairConvOptions):
    """embedding_conv's options for the windows' heads, linear_head's ``l2`` for the others."""

    section = "model.word_pair_mean"

    # Heads of each kind: ``members`` embedding_conv and as many linear_head heads, each with its
    # own initialization and dropout (a mean over training's luck; the front end, not the heads,
    # is what streaming pays for).
    members: int = param(1, integer(1, 16))


def build(x, num_labels, dropout, options: WordPairMeanOptions):
    flat, sequence, _ = split_pair(x, options)
    heads = []
    for member in range(options.members):
        tag = f"m{member}_" if options.members > 1 else ""
        heads.append(conv_classifier(sequence, num_labels, dropout, options, prefix=f"{tag}conv_"))
        heads.append(
            logistic_regression(flat, num_labels, dropout, options.l2, prefix=f"{tag}linear_")
        )
    return stack_heads(heads)


MODEL = ModelSpec(
    "word_pair_mean",
    build,
    "embedding_conv and linear_head trained side by side; their softmaxes averaged",
    WordPairMeanOptions,
)
