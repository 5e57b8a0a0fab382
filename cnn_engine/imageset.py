"""A set of images, named and ordered once: what a folder, a list file or a pattern holds.

``ImageSet(source, categories=None)`` takes:

* a **folder**: every image file under it, recursively, chosen by file name ending
  (:data:`cnn_engine.images.IMAGE_EXTENSIONS`, any case). Hidden files and folders (name starting
  with ``.``) are skipped. Torchvision's ``ImageFolder`` layout gives the labels: the label of an
  image is the name of the first folder under the root on its way (``root/n02123045/x/a.jpg`` has
  label ``n02123045``); images directly in the root have no label. Links to folders are not
  followed (a link loop cannot make the set endless); links to files are taken.
* a **list file** (``.csv`` or ``.txt``): one ``path[,label]`` a line, read with the ``csv`` module
  (quote paths holding commas). A first line ``path,label`` (or ``path``) is a header. Relative paths
  are relative to the list file's folder. Blank lines and lines starting with ``#`` are skipped.
* a **glob pattern** (holding ``*``, ``?`` or ``[``, ``**`` for any depth): the matching image
  files, e.g. a numbered series ``frames/frame_*.png``. No labels.
* a **list or tuple** of any of these or of image files (files given by name are taken whatever
  their ending), or an ``ImageSet`` (an equivalent set; relabelled if ``categories`` is given).

Labels become class indices in ``categories`` (default: ImageNet's 1000 classes, in
torchvision's order): an ImageNet WordNet ID (``n02123045`` -> 281, through
``cnn_engine/data/imagenet_wnids.txt``, only for ImageNet's categories), a class name (any case,
``_`` for spaces: ``tabby``, ``golden_retriever``) or a class index (``281``). A label that matches
no class is one message in ``problems`` naming the label and where it came from;
its images stay in the set without a label. With ``categories=()`` (a model whose classes are not
known) only class indices are labels, unchecked.

**Order** (deterministic): folders and patterns in natural order of the path relative to the root
(or to the pattern's fixed folder), folder by folder: numbers compare as numbers, so ``img2``
comes before ``img10``, then case is ignored, then the plain text decides. List files and lists keep
their own order (a folder inside a list is in natural order at its place).

**Duplicates**: the same file twice (same path once resolved, or a hard link to it) is kept once,
at its first place, and reported in ``problems``.

**Names** (``names``, for output files ``<name>.nc``): the file name without its ending; where
names clash (case ignored, as on macOS and Windows), the path relative to the root with ``/``
written ``__`` and without the ending (``cat/img1.jpg`` -> ``cat__img1``), then with the ending
(``cat__img1.jpg``), then a number (``img1_2``). Characters no common file system takes
(``/ \\ : * ? " < > |`` and control characters) become ``_``; spaces and non-ASCII letters stay.

Every message in ``problems`` is also a warning (:func:`warnings.warn`), once.

Nothing here opens an image: a file that is missing or not an image is reported when it is loaded
(:func:`cnn_engine.images.load_image`) and the set goes on. A source that gives no images at all
raises :class:`~cnn_engine.errors.ImageError`.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence, Union

from .errors import ImageError
from .images import IMAGE_EXTENSIONS

#: Anything :class:`ImageSet` accepts.
ImageSetSource = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], "ImageSet"]

#: File name endings read as list files rather than images.
LIST_EXTENSIONS = ("csv", "txt")

#: Largest list file read, in bytes (64 MiB, about a million lines): a list is text, never this big.
MAX_LIST_BYTES = 64 * 1024 * 1024

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
_WNID = re.compile(r"n\d{8}")
# Characters no common file system takes in a name (and control characters): spaces and
# non-ASCII letters are kept, so an output is named like its image.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet IDs in class index order (``n01440764`` first)."""
    text = resources.files(__package__).joinpath("data", "imagenet_wnids.txt").read_text("ascii")
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    # A damaged installation must not label images wrongly without a word.
    if len(wnids) != 1000 or len(set(wnids)) != 1000:
        raise RuntimeError(f"cnn_engine/data/imagenet_wnids.txt holds {len(wnids)} ids, not 1000: reinstall cnnvis")
    return wnids


def natural_key(relative: str) -> tuple:
    """Sort key of a relative ``/`` path: folder by folder, numbers as numbers, case ignored; then
    the plain text, so that ``IMG1`` and ``img1`` (or ``img01``) keep a fixed order too."""
    key = []
    for part in relative.split("/"):
        pieces = _DIGITS.split(part)
        # Even positions are text, odd ones digits: every key compares like with like.
        key.append(tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(pieces)))
    return (tuple(key), relative)


@dataclass(frozen=True)
class _Entry:
    """One image of the set before labels are resolved."""

    path: Path  # absolute, not resolved (symbolic links stay as given)
    relative: str  # "/" path used for order and names
    label_name: str | None  # the label as the set gives it
    origin: str  # where it came from, for messages: "folder /x", "line 4 of /y.csv"


class ImageSet:
    """Images to run as one set, in a fixed order, with their true labels where the source gives them.

    See the module documentation for the sources, the order, labels and names. Attributes (tuples,
    one item per image, in set order): ``paths`` (absolute :class:`~pathlib.Path`), ``labels``
    (class index in ``categories`` or ``None``), ``label_names`` (the label as given, or ``None``),
    ``names`` (unique, file-name safe); and ``classes`` (the distinct label names, natural order),
    ``problems`` (messages about the set: unknown labels, duplicates), ``source`` (a description).
    ``len()``, iteration (over paths) and indexing (a path) work as on a tuple of paths.
    """

    def __init__(self, source: ImageSetSource, categories: Sequence[str] | None = None) -> None:
        problems: list[str] = []
        inherited: tuple[str, ...] = ()  # already warned about when ``source`` was made
        if isinstance(source, ImageSet):
            inherited = source.problems
            entries = list(source._entries)
            problems.extend(source._source_problems)  # label problems are found again below
            self.source = source.source
            if categories is None:
                categories = source._categories
        elif isinstance(source, (list, tuple)):
            if not source:
                raise ImageError("the list of images is empty: give image files, folders or list files")
            entries = []
            for item in source:
                entries.extend(_expand(item, in_list=True, problems=problems))
            self.source = f"{len(source)} paths"
        elif isinstance(source, (str, os.PathLike)):
            entries = _expand(source, in_list=False, problems=problems)
            self.source = os.fspath(source)
        else:
            raise ImageError(
                f"cannot make an image set from a {type(source).__name__}: give a folder, a list file "
                "(.csv or .txt), a glob pattern or a list of image paths"
            )
        if not entries:
            raise ImageError(f"no images in {self.source}")
        entries = _without_duplicates(entries, problems)
        self._source_problems = tuple(problems)
        self._categories = None if categories is None else tuple(str(c) for c in categories)
        self._entries = tuple(entries)
        labels, label_problems = _resolve_labels(entries, self._categories)
        problems.extend(label_problems)
        for message in problems:
            if message not in inherited:
                warnings.warn(message, stacklevel=2)
        self.paths: tuple[Path, ...] = tuple(e.path for e in entries)
        self.label_names: tuple[str | None, ...] = tuple(e.label_name for e in entries)
        self.labels: tuple[int | None, ...] = labels
        self.names: tuple[str, ...] = _unique_names([e.relative for e in entries])
        self.classes: tuple[str, ...] = tuple(
            sorted({n for n in self.label_names if n is not None}, key=natural_key)
        )
        self.problems: tuple[str, ...] = tuple(problems)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __getitem__(self, index: int) -> Path:
        return self.paths[index]

    def __repr__(self) -> str:
        labelled = sum(label is not None for label in self.labels)
        images = "1 image" if len(self) == 1 else f"{len(self)} images"
        return (
            f"ImageSet({self.source!r}: {images}, {labelled} labelled, "
            f"{len(self.classes)} classes, {len(self.problems)} problems)"
        )


# -- what a source holds ---------------------------------------------------------------------


def _expand(item: str | os.PathLike, *, in_list: bool, problems: list[str]) -> list[_Entry]:
    """The entries one source item gives, in set order."""
    if isinstance(item, ImageSet):
        return list(item._entries)
    if not isinstance(item, (str, os.PathLike)):
        raise ImageError(f"cannot read an image path from a {type(item).__name__}: give paths as text")
    text = os.fspath(item)
    path = Path(text).expanduser()
    if path.is_dir():
        return _folder(path, prefix=path.absolute().name if in_list else None)
    if path.exists() or path.is_symlink():
        if path.suffix.lower().lstrip(".") in LIST_EXTENSIONS:
            return _list_file(path, problems)
        # An image file named directly is taken whatever its ending; load_image judges it later.
        return [_Entry(_absolute(path), _relative_as_given(text), None, f"path {text}")]
    if _GLOB_CHARACTERS.search(text):
        return _pattern(text)
    if in_list:
        # A vanished file in a list is reported when loaded, as in a list file: the set goes on.
        return [_Entry(_absolute(path), _relative_as_given(text), None, f"path {text}")]
    raise ImageError(
        f"image set not found: {text} (give a folder, a list file .csv/.txt, a glob pattern such as "
        "'frames/*.png', or image files)"
    )


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower().lstrip(".") in IMAGE_EXTENSIONS


def _folder(root: Path, prefix: str | None) -> list[_Entry]:
    """Image files under ``root`` in natural order, labelled by their first folder under it."""
    entries = []
    for directory, folders, files in os.walk(root):
        # Hidden folders (.git, .ipynb_checkpoints, macOS ._ files) are not part of a data set.
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            if name.startswith(".") or not _is_image_name(name):
                continue
            relative = Path(directory, name).relative_to(root).as_posix()
            label = relative.split("/", 1)[0] if "/" in relative else None
            origin = f"folder {root / label}" if label is not None else f"folder {root}"
            shown = f"{prefix}/{relative}" if prefix else relative
            entries.append(_Entry(_absolute(root / relative), shown, label, origin))
    if not entries:
        raise ImageError(
            f"no images in folder {root} or its subfolders (looked for files ending in "
            f"{', '.join('.' + e for e in IMAGE_EXTENSIONS)}, any case)"
        )
    entries.sort(key=lambda e: natural_key(e.relative))
    return entries


def _pattern(pattern: str) -> list[_Entry]:
    """Image files matching a glob pattern, in natural order of their path below its fixed folder."""
    expanded = os.path.expanduser(pattern)
    base = _fixed_folder(expanded)
    found = [p for p in glob.glob(expanded, recursive=True) if _is_image_name(p) and os.path.isfile(p)]
    if not found:
        raise ImageError(
            f"no image files match the pattern {pattern} (looked for files ending in "
            f"{', '.join('.' + e for e in IMAGE_EXTENSIONS)}, any case)"
        )
    entries = [
        _Entry(_absolute(Path(p)), Path(os.path.relpath(p, base)).as_posix(), None, f"pattern {pattern}")
        for p in found
    ]
    entries.sort(key=lambda e: natural_key(e.relative))
    return entries


def _fixed_folder(pattern: str) -> str:
    """The folder part of ``pattern`` before its first wildcard ("." if there is none)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if _GLOB_CHARACTERS.search(part):
            break
        fixed.append(part)
    return os.path.join(*fixed) if fixed else "."


def _list_file(path: Path, problems: list[str]) -> list[_Entry]:
    """The entries of a ``path[,label]`` list file, in its own order."""
    text = _read_list(path)
    folder = path.absolute().parent
    entries = []
    rows = csv.reader(io.StringIO(text, newline=""))
    first = True
    for row in rows:
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        line = rows.line_num
        if first and cells[0].lower() == "path" and (len(cells) == 1 or cells[1].lower() == "label"):
            first = False
            continue
        first = False
        if not cells[0]:
            problems.append(f"line {line} of list file {path} has a label but no path; skipped")
            continue
        if len(cells) > 2 and any(cells[2:]):
            problems.append(
                f"line {line} of list file {path} has {len(cells)} columns, not path,label: the first is "
                "taken as the path, the second as the label (quote paths that hold commas)"
            )
        listed = Path(cells[0]).expanduser()
        full = listed if listed.is_absolute() else folder / listed
        label = cells[1] if len(cells) > 1 and cells[1] else None
        entries.append(_Entry(_absolute(full), _relative_to(full, folder), label, f"line {line} of list file {path}"))
    if not entries:
        raise ImageError(
            f"list file {path} names no images: write one path[,label] a line (a first line "
            "path,label is a header; # starts a comment)"
        )
    return entries


def _read_list(path: Path) -> str:
    """The text of a list file, refused if it is not a readable regular text file of sane size."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ImageError(f"cannot read list file {path}: {exc.strerror or exc}") from None
    # A FIFO or a device would block or never end: only regular files are lists.
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"list file {path} is not a regular file: give a .csv or .txt file")
    if info.st_size > MAX_LIST_BYTES:
        raise ImageError(
            f"list file {path} has {info.st_size} bytes, more than the {MAX_LIST_BYTES} a list may have"
        )
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_LIST_BYTES + 1)
        return data.decode("utf-8-sig")  # Excel writes a byte order mark before UTF-8 CSV
    except OSError as exc:
        raise ImageError(f"cannot read list file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ImageError(
            f"list file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV or text"
        ) from None


def _absolute(path: Path) -> Path:
    # abspath, not resolve: a symbolic link keeps the name the user gave it.
    return Path(os.path.abspath(path))


def _relative_as_given(text: str) -> str:
    """A path as the user wrote it, as a relative "/" path (an absolute one loses its root)."""
    normal = Path(os.path.normpath(os.path.expanduser(text)))
    parts = [p for p in normal.parts if p not in (normal.anchor, "..", ".")]
    return "/".join(parts) or normal.name


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.normpath(path)).relative_to(folder).as_posix()
    except ValueError:
        return _relative_as_given(os.fspath(path))


# -- duplicates, names, labels ---------------------------------------------------------------


def _identity(path: Path) -> object:
    """What makes two paths the same file: device and inode where it exists, else the resolved path."""
    try:
        info = os.stat(path)
        return (info.st_dev, info.st_ino)
    except OSError:
        return os.path.realpath(path)


def _without_duplicates(entries: list[_Entry], problems: list[str]) -> list[_Entry]:
    seen: dict[object, _Entry] = {}
    kept = []
    for entry in entries:
        key = _identity(entry.path)
        if key in seen:
            first = seen[key]
            same = "" if first.path == entry.path else f" (the same file as {first.path})"
            problems.append(
                f"duplicate image {entry.path}{same}: in the set from {first.origin} and again from "
                f"{entry.origin}; kept once, at its first place"
            )
            continue
        seen[key] = entry
        kept.append(entry)
    return kept


def _safe(text: str) -> str:
    name = _UNSAFE.sub("_", text).lstrip(".")
    return name or "image"


def _unique_names(relatives: list[str]) -> tuple[str, ...]:
    """File-name-safe names, unique even where case is ignored (see the module documentation)."""
    candidates = []
    for relative in relatives:
        path = Path(relative)
        no_ending = path.with_suffix("").as_posix() if path.suffix else relative
        candidates.append(
            (_safe(path.stem), _safe(no_ending.replace("/", "__")), _safe(relative.replace("/", "__")))
        )
    level = [0] * len(relatives)
    while True:
        counts: dict[str, list[int]] = {}
        for i, choice in enumerate(level):
            counts.setdefault(candidates[i][choice].casefold(), []).append(i)
        clashing = [i for group in counts.values() if len(group) > 1 for i in group if level[i] < 2]
        if not clashing:
            break
        for i in clashing:
            level[i] += 1
    names = [candidates[i][choice] for i, choice in enumerate(level)]
    taken = {n.casefold() for n in names}
    used: set[str] = set()
    for i, name in enumerate(names):
        # Whatever still clashes (the same relative path from two roots) gets a number, in set order.
        if name.casefold() in used:
            number = 2
            while f"{name}_{number}".casefold() in taken:
                number += 1
            name = f"{name}_{number}"
            names[i] = name
            taken.add(name.casefold())
        used.add(name.casefold())
    return tuple(names)


@lru_cache(maxsize=1)
def _imagenet_categories() -> tuple[str, ...]:
    from .models import imagenet_categories  # torch only when a class name must be looked up

    return imagenet_categories()


class _Classes:
    """Turns a label as a set gives it into a class index of ``categories`` (None: ImageNet's 1000)."""

    def __init__(self, categories: tuple[str, ...] | None) -> None:
        self._given = categories

    @property
    def count(self) -> int | None:
        if self._given is None:
            return 1000
        return len(self._given) or None

    def _names(self) -> tuple[str, ...]:
        return _imagenet_categories() if self._given is None else self._given

    def is_imagenet(self) -> bool:
        if self._given is None:
            return True
        return len(self._given) == 1000 and self._given == _imagenet_categories()

    def index(self, label: str) -> tuple[int | None, str | None]:
        """(class index, None) or (None, why the label matches no class)."""
        if _WNID.fullmatch(label):
            if self.is_imagenet():
                return imagenet_wnids().index(label), None
        if label.isdecimal() and label.isascii():
            index = int(label)
            if self.count is None or index < self.count:
                return index, None
            return None, f"class index {index} is out of range 0 to {self.count - 1}"
        if self.count is None:
            return None, "the model's classes are not known, so only class indices are labels"
        wanted = label.replace("_", " ").strip()
        names = self._names()
        if wanted in names:
            return names.index(wanted), None
        matches = [i for i, name in enumerate(names) if name.casefold() == wanted.casefold()]
        if len(matches) == 1:
            return matches[0], None
        if matches:
            listed = ", ".join(f"{names[i]!r} ({i})" for i in matches)
            return None, f"it names {len(matches)} classes once case is ignored: {listed}; give the index"
        kinds = "a WordNet ID such as n02123045, " if self.is_imagenet() else ""
        return None, f"it is not {kinds}a class name such as {names[0]!r} or a class index 0 to {len(names) - 1}"


def _resolve_labels(
    entries: list[_Entry], categories: tuple[str, ...] | None
) -> tuple[tuple[int | None, ...], list[str]]:
    """Class indices of the entries' labels and one message per label that matches no class."""
    classes = _Classes(categories)
    known: dict[str, int | None] = {}
    unknown: dict[str, tuple[str, list[_Entry]]] = {}
    labels = []
    for entry in entries:
        name = entry.label_name
        if name is None:
            labels.append(None)
            continue
        if name not in known:
            known[name], why = classes.index(name)
            if why is not None:
                unknown[name] = (why, [])
        if name in unknown:
            unknown[name][1].append(entry)
        labels.append(known[name])
    messages = []
    for name, (why, members) in unknown.items():
        origins = sorted({m.origin for m in members}, key=natural_key)
        where = origins[0] if len(origins) == 1 else f"{origins[0]} and {len(origins) - 1} more places"
        count = "image stays" if len(members) == 1 else f"{len(members)} images stay"
        messages.append(f"label {name!r} (from {where}) matches no class: {why}; its {count} without a label")
    return tuple(labels), messages

