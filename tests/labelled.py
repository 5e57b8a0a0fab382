"""Small labelled image sets made from the sample photographs, for the statistics' tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

#: Crop windows (left, top, right, bottom) in pixels of a sample photograph: three views of it.
WINDOWS = ((0, 0, 300, 200), (150, 100, 450, 300), (75, 50, 375, 250))


def labelled_set(root: Path, samples: Path, classes=(("tabby", "cat.jpg"), ("espresso", "coffee.jpg"))) -> Path:
    """Class folders named by ImageNet class names, each with crops of one photograph and their mirrors."""
    for label, name in classes:
        (root / label).mkdir(parents=True)
        photo = Image.open(samples / name).convert("RGB")
        for i, window in enumerate(WINDOWS):
            crop = photo.crop(window)
            crop.save(root / label / f"{label}_{i}.png")
            ImageOps.mirror(crop).save(root / label / f"{label}_{i}_mirrored.png")
    return root
