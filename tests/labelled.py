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


def scaled_views_set(root: Path, samples: Path,
                     classes=(("tabby", "cat.jpg"), ("espresso", "coffee.jpg"), ("missile", "rocket.jpg"))) -> Path:
    """Class folders of four views of a photograph (at most 240 px): whole, mirrored, and two crops
    of other heights (so the network sees them at other scales: crops at the same scale share
    pixels, hence maxima that only rounding orders), the second mirrored."""
    for label, name in classes:
        picture = Image.open(samples / name).convert("RGB")
        picture.thumbnail((240, 240))
        width, height = picture.size
        first = picture.crop((int(width * 0.1), int(height * 0.05), int(width * 0.85), int(height * 0.9)))
        second = picture.crop((int(width * 0.2), int(height * 0.15), width, int(height * 0.95)))
        (root / label).mkdir(parents=True)
        for i, view in enumerate((picture, ImageOps.mirror(picture), first, ImageOps.mirror(second))):
            view.save(root / label / f"{label}{i}.png")
    return root
