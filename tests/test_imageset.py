"""An image set: what a folder, list file, pattern or list of paths holds, in a documented order."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from cnn_engine import ImageError, ImageSet
from cnn_engine.imageset import imagenet_wnids
from cnn_engine.models import imagenet_categories


def _put(samples: Path, target: Path, sample: str = "cat.jpg") -> Path:
    """A real photograph copied to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(samples / sample, target)
    return target


def test_the_packaged_wordnet_ids_are_imagenets_in_torchvisions_class_order():
    wnids = imagenet_wnids()
    assert len(wnids) == len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)
    assert (wnids[0], wnids[281], wnids[-1]) == ("n01440764", "n02123045", "n15075141")
    assert imagenet_categories()[281] == "tabby"


def test_wordnet_id_folder_gives_the_imagenet_class_index(samples, tmp_path):
    _put(samples, tmp_path / "n02123045" / "cat.jpg")
    _put(samples, tmp_path / "n07920052" / "coffee.jpg", "coffee.jpg")
    images = ImageSet(tmp_path)
    assert images.label_names == ("n02123045", "n07920052")
    assert images.labels == (281, 967)  # tabby, espresso
    assert images.classes == ("n02123045", "n07920052")
    assert images.problems == ()


def test_class_name_folders_match_any_case_and_underscores_for_spaces(samples, tmp_path):
    _put(samples, tmp_path / "Tabby" / "cat.jpg")
    _put(samples, tmp_path / "golden_retriever" / "dog.jpg")
    assert ImageSet(tmp_path).labels == (207, 281)


def test_integer_folder_is_the_class_index(samples, tmp_path):
    _put(samples, tmp_path / "281" / "cat.jpg")
    assert ImageSet(tmp_path).labels == (281,)


def test_images_directly_in_the_root_have_no_label(samples, tmp_path):
    _put(samples, tmp_path / "cat.jpg")
    images = ImageSet(tmp_path)
    assert (images.labels, images.label_names, images.classes) == ((None,), (None,), ())


def test_label_matching_no_class_is_reported_once_and_its_images_stay(samples, tmp_path):
    _put(samples, tmp_path / "kittens" / "a.jpg")
    _put(samples, tmp_path / "kittens" / "b.jpg")
    _put(samples, tmp_path / "tabby" / "c.jpg")
    with pytest.warns(UserWarning, match="label 'kittens'"):
        images = ImageSet(tmp_path)
    assert len(images) == 3
    assert images.labels == (None, None, 281)
    assert images.label_names == ("kittens", "kittens", "tabby")
    assert images.problems == (
        f"label 'kittens' (from folder {tmp_path / 'kittens'}) matches no class: it is not a WordNet ID "
        "such as n02123045, a class name such as 'tench' or a class index 0 to 999; its 2 images stay "
        "without a label",
    )


def test_class_index_beyond_the_categories_is_reported(samples, tmp_path):
    _put(samples, tmp_path / "1000" / "cat.jpg")
    with pytest.warns(UserWarning, match="class index 1000 is out of range 0 to 999"):
        assert ImageSet(tmp_path).labels == (None,)


def test_labels_follow_the_categories_given(samples, tmp_path):
    _put(samples, tmp_path / "cats" / "a.jpg")
    _put(samples, tmp_path / "1" / "b.jpg")
    assert ImageSet(tmp_path, categories=["dogs", "cats"]).labels == (1, 1)


def test_order_is_natural_numbers_compare_as_numbers(samples, tmp_path):
    for name in ("img10.jpg", "img2.jpg", "IMG3.jpg", "img1.jpg", "tabby/img0.jpg"):
        _put(samples, tmp_path / name)
    images = ImageSet(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == [
        "img1.jpg", "img2.jpg", "IMG3.jpg", "img10.jpg", "tabby/img0.jpg",
    ]


def test_folder_scan_is_recursive_by_extension_and_skips_hidden_files(samples, tmp_path):
    _put(samples, tmp_path / "tabby" / "deep" / "er" / "x.JPG")
    _put(samples, tmp_path / "tabby" / "y.png", "camera.png")
    _put(samples, tmp_path / ".ipynb_checkpoints" / "x.jpg")
    (tmp_path / "tabby" / "notes.md").write_text("not an image")
    images = ImageSet(tmp_path)
    assert images.paths == (tmp_path / "tabby" / "deep" / "er" / "x.JPG", tmp_path / "tabby" / "y.png")
    assert images.labels == (281, 281)


def test_csv_with_header_relative_paths_labels_and_comments(samples, tmp_path):
    _put(samples, tmp_path / "pics" / "cat.jpg")
    _put(samples, tmp_path / "pics" / "coffee.jpg", "coffee.jpg")
    listing = tmp_path / "lists" / "set.csv"
    listing.parent.mkdir()
    listing.write_text(
        "path,label\n"
        "# the cup first: a list keeps its own order\n"
        "../pics/coffee.jpg,espresso\n"
        "\n"
        f"{tmp_path / 'pics' / 'cat.jpg'},n02123045\n"
        "../pics/unlabelled.jpg\n"
    )
    images = ImageSet(listing)
    assert images.paths == (
        tmp_path / "pics" / "coffee.jpg", tmp_path / "pics" / "cat.jpg", tmp_path / "pics" / "unlabelled.jpg",
    )
    assert images.labels == (967, 281, None)
    assert images.label_names == ("espresso", "n02123045", None)
    assert images.problems == ()  # the missing file is reported when it is loaded


def test_txt_list_without_header_takes_paths_only(samples, tmp_path):
    _put(samples, tmp_path / "cat.jpg")
    (tmp_path / "list.txt").write_text("cat.jpg\n")
    images = ImageSet(tmp_path / "list.txt")
    assert (images.paths, images.labels) == ((tmp_path / "cat.jpg",), (None,))


def test_glob_pattern_gives_a_numbered_series_in_number_order(samples, tmp_path):
    for number in (10, 9, 1):
        _put(samples, tmp_path / "frames" / f"frame_{number}.jpg")
    (tmp_path / "frames" / "frame_notes.txt").write_text("not an image")
    images = ImageSet(str(tmp_path / "frames" / "frame_*"))
    assert images.names == ("frame_1", "frame_9", "frame_10")


def test_list_of_paths_keeps_its_order_and_expands_folders(samples, tmp_path):
    _put(samples, tmp_path / "one" / "tabby" / "b.jpg")
    _put(samples, tmp_path / "one" / "tabby" / "a.jpg")
    single = _put(samples, tmp_path / "z.jpg")
    images = ImageSet([single, tmp_path / "one"])
    assert images.paths == (single, tmp_path / "one" / "tabby" / "a.jpg", tmp_path / "one" / "tabby" / "b.jpg")
    assert images.labels == (None, 281, 281)


def test_the_same_file_twice_is_kept_once_and_reported(samples, tmp_path):
    cat = _put(samples, tmp_path / "cat.jpg")
    (tmp_path / "list.csv").write_text("cat.jpg\n./cat.jpg\n")
    with pytest.warns(UserWarning, match="duplicate image"):
        images = ImageSet(tmp_path / "list.csv")
    assert images.paths == (cat,)
    assert images.problems == (
        f"duplicate image {cat}: in the set from line 1 of list file {tmp_path / 'list.csv'} and again "
        f"from line 2 of list file {tmp_path / 'list.csv'}; kept once, at its first place",
    )


def test_clashing_names_use_the_relative_path(samples, tmp_path):
    _put(samples, tmp_path / "cat" / "img1.jpg")
    _put(samples, tmp_path / "dog" / "img1.jpg")
    _put(samples, tmp_path / "dog" / "img1.png", "camera.png")
    _put(samples, tmp_path / "dog" / "my photo.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cat and dog are no ImageNet class names
        images = ImageSet(tmp_path)
    assert images.names == ("cat__img1", "dog__img1.jpg", "dog__img1.png", "my photo")


def test_names_differing_only_in_case_clash(samples, tmp_path):
    _put(samples, tmp_path / "a" / "Cat.jpg")
    _put(samples, tmp_path / "b" / "cat.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ImageSet(tmp_path).names == ("a__Cat", "b__cat")


def test_an_image_set_of_an_image_set_is_the_same_set(samples, tmp_path):
    _put(samples, tmp_path / "tabby" / "cat.jpg")
    _put(samples, tmp_path / "espresso" / "coffee.jpg", "coffee.jpg")
    first = ImageSet(tmp_path)
    again = ImageSet(first)
    assert (again.paths, again.labels, again.label_names, again.names, again.classes) == (
        first.paths, first.labels, first.label_names, first.names, first.classes,
    )
    assert len(again) == 2 and again[0] == tmp_path / "espresso" / "coffee.jpg"
    assert repr(again) == f"ImageSet({str(tmp_path)!r}: 2 images, 2 labelled, 2 classes, 0 problems)"


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(ImageError, match=f"image set not found: {tmp_path / 'nowhere'} \\(give a folder"):
        ImageSet(tmp_path / "nowhere")


def test_folder_without_images_names_the_extensions_looked_for(tmp_path):
    (tmp_path / "notes.md").write_text("not an image")
    with pytest.raises(ImageError, match=r"no images in folder .* \(looked for files ending in \.png, \.jpg"):
        ImageSet(tmp_path)


def test_empty_list_file_is_an_error(tmp_path):
    (tmp_path / "list.csv").write_text("path,label\n# nothing yet\n\n")
    with pytest.raises(ImageError, match=f"list file {tmp_path / 'list.csv'} names no images"):
        ImageSet(tmp_path / "list.csv")


def test_list_file_that_is_not_text_is_an_error(tmp_path):
    (tmp_path / "list.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImageError, match="is not UTF-8 text"):
        ImageSet(tmp_path / "list.txt")


def test_pattern_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(ImageError, match="no image files match the pattern"):
        ImageSet(str(tmp_path / "frame_*.png"))


def test_empty_list_of_paths_is_an_error():
    with pytest.raises(ImageError, match="the list of images is empty"):
        ImageSet([])
