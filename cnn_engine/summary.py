"""What a set of volumes says about the classifier: accuracy where labels are known, and the
confusion of the top-1 class."""

from __future__ import annotations

from collections import Counter, defaultdict

from .volume import ActivationVolume


class SetSummary:
    """Counts over the volumes :meth:`add` is given (one per image of a set).

    An image is *labelled* when its provenance has a true class index (``true_label``). Top-1
    accuracy: the share of labelled images whose most probable class is the true one; top-5:
    whose five most probable classes hold it. ``confusion`` maps each true label name (as the set
    gives it) to the counts of the top-1 class labels predicted for its images.
    """

    def __init__(self) -> None:
        self.count = 0
        self.labelled = 0
        self.top1_correct = 0
        self.top5_correct = 0
        self.confusion: dict[str, Counter] = defaultdict(Counter)
        self.predicted: Counter = Counter()

    def add(self, volume: ActivationVolume) -> None:
        """Count one image's volume."""
        self.count += 1
        top = volume.predictions[0].label if volume.predictions else "(no prediction)"
        self.predicted[top] += 1
        truth = volume.provenance.true_label
        if truth is None:
            return
        self.labelled += 1
        indices = [p.index for p in volume.predictions]
        self.top1_correct += bool(indices) and indices[0] == truth
        self.top5_correct += truth in indices[:5]
        self.confusion[volume.provenance.true_label_name or str(truth)][top] += 1

    @property
    def top1_accuracy(self) -> float | None:
        """Share of labelled images classified right (0 to 1), None without labelled images."""
        return self.top1_correct / self.labelled if self.labelled else None

    @property
    def top5_accuracy(self) -> float | None:
        """Share of labelled images whose true class is among the top 5, None without labels."""
        return self.top5_correct / self.labelled if self.labelled else None

    def lines(self) -> list[str]:
        """The summary as text lines: counts, accuracies, and per true label the predicted top-1 classes."""
        lines = [f"{self.count} images, {self.labelled} with a known class"]
        if self.labelled:
            lines.append(f"top-1 accuracy {self.top1_accuracy:.1%} ({self.top1_correct}/{self.labelled}), "
                         f"top-5 accuracy {self.top5_accuracy:.1%} ({self.top5_correct}/{self.labelled})")
            lines.append("top-1 class by true label:")
            for truth in sorted(self.confusion):
                counts = ", ".join(f"{label} {n}" for label, n in self.confusion[truth].most_common())
                lines.append(f"  {truth}: {counts}")
        elif self.count:
            counts = ", ".join(f"{label} {n}" for label, n in self.predicted.most_common(10))
            lines.append(f"top-1 classes: {counts}")
        return lines
