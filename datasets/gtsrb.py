"""GTSRB, the German Traffic Sign Recognition Benchmark (Stallkamp et al. 2012),
https://benchmark.ini.rub.de/gtsrb_dataset.html, 43 classes, in its published layout.

Training set (``GTSRB_Final_Training_Images.zip``, or torchvision's
``GTSRB-Training_fixed.zip`` which names the folder ``Training``)::

    GTSRB/Final_Training/Images/00000/00000_00000.ppm
    GTSRB/Final_Training/Images/00000/GT-00000.csv
    ...
    GTSRB/Final_Training/Images/00042/GT-00042.csv

Test set: ``GTSRB/Final_Test/Images/*.ppm`` plus the ground truth ``GT-final_test.csv``
(from ``GTSRB_Final_Test_GT.zip``). Every CSV is semicolon-separated::

    Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId

The region of interest bounds the sign inside a border of about 10% (at least 5
pixels). The published rows (e.g. a 29x30 image with ROI 5,6 to 24,25) leave at
least 5 pixels after X2/Y2 only if X2/Y2 are exclusive, so ``crop_roi=True`` crops
the PIL box ``(X1, Y1, X2, Y2)``, right/bottom edges excluded.

The images vary in size (15x15 to 250x250), so there is no ``.data`` array; use
``.samples`` (path, label), ``.targets`` and ``.rois``.
"""

import csv
import os

from PIL import Image

from minidl.datasets.download import download_from_mirrors, extract_archive
from minidl.datasets.vision import VisionDataset
from minidl.errors import DatasetFormatError

__all__ = ["GTSRB", "GTSRB_CLASS_NAMES", "GTSRB_FLIP_MAP"]

_FIELDS = ("Filename", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")


def _check_filename(csv_path, line, name):
    """A CSV's Filename must name a file inside its image folder: relative, no ``..``, not empty.

    A hostile CSV could otherwise make the dataset read (and hand to a model, or show) any
    file the user can read, e.g. ``../../../home/user/.ssh/id_rsa``.
    """
    normal = os.path.normpath(name) if name else ""
    if (not name or os.path.isabs(name) or os.path.splitdrive(name)[0] or normal == "."
            or normal == ".." or normal.startswith(".." + os.sep) or "\0" in name):
        raise DatasetFormatError(
            csv_path, f"line {line}: Filename {name!r} does not name a file inside the dataset folder "
                      "(absolute paths and '..' are refused)")
    return name


def _read_gt_csv(path, require_class=True):
    """Parse one GT CSV into ``[(filename, (x1, y1, x2, y2), class_id)]``."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f, delimiter=";", skipinitialspace=True)
            fields = set(reader.fieldnames or [])
            needed = set(_FIELDS) if require_class else set(_FIELDS) - {"ClassId"}
            if not needed <= fields:
                raise ValueError(
                    f"{path}: expected the columns {';'.join(_FIELDS)}, got {';'.join(reader.fieldnames or [])}"
                    + (" (this is the unlabelled test CSV; get GT-final_test.csv from GTSRB_Final_Test_GT.zip)"
                       if "ClassId" not in fields and require_class else "")
                )
            rows = []
            for line, row in enumerate(reader, start=2):
                try:
                    roi = tuple(int(row[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
                    label = int(row["ClassId"])
                except (TypeError, ValueError) as error:
                    raise DatasetFormatError(path, f"line {line}: cannot parse {row} ({error})") from error
                rows.append((_check_filename(path, line, row["Filename"]), roi, label))
    except UnicodeDecodeError as error:
        raise DatasetFormatError(path, f"not a text CSV ({error}); the file is corrupt") from error
    return rows


# ------------------------------------------------------------------------------ class names and flip map
# The 43 classes (the benchmark's ClassId order) and what each becomes when mirrored left-right,
# for label-aware flips (minidl.data.flips): the class itself (the sign is symmetric), its
# mirror class, or None: not flippable, because the mirror image is no GTSRB sign (digits or
# text, pictograms that face one way, a mirrored shape that exists only outside the 43 classes).
#
#  id  name                                      mirrored   why
#   0-5, 7, 8  speed limits 20..120 km/h          None       digits read backwards
#   6  end of speed limit (80 km/h)               None       digits, and the bar runs the other way
#   9  no passing                                 None       red car on the left only
#  10  no passing for vehicles over 3.5 t         None       red truck on the left only
#  11  right-of-way at the next intersection      11         symmetric cross
#  12  priority road                              12         symmetric diamond
#  13  yield                                      13         symmetric triangle
#  14  stop                                       None       the word STOP
#  15  no vehicles                                15         empty disc
#  16  vehicles over 3.5 t prohibited             None       the truck faces one way
#  17  no entry                                   17         symmetric bar
#  18  general caution                            18         exclamation mark
#  19  dangerous curve to the left                20         mirrored: curve to the right
#  20  dangerous curve to the right               19
#  21  double curve (first to the left)           None       first-right double curve is not a class
#  22  bumpy road                                 22         symmetric
#  23  slippery road                              None       the skidding car faces one way
#  24  road narrows on the right                  None       narrows-on-the-left is not a class
#  25  road work                                  None       the worker faces one way
#  26  traffic signals                            26         symmetric (lights stacked vertically)
#  27  pedestrians                                None       the walker faces one way
#  28  children crossing                          None       the children face one way
#  29  bicycles crossing                          None       the bicycle faces one way
#  30  beware of ice/snow                         30         symmetric snowflake
#  31  wild animals crossing                      None       the deer faces one way
#  32  end of all speed and passing limits        None       the stripes run the other way
#  33  turn right ahead                           34
#  34  turn left ahead                            33
#  35  ahead only                                 35         symmetric arrow
#  36  go straight or right                       37
#  37  go straight or left                        36
#  38  keep right                                 39
#  39  keep left                                  38
#  40  roundabout mandatory                       None       the arrows would turn clockwise
#  41  end of no passing                          None       the cars and the stripe face one way
#  42  end of no passing by vehicles over 3.5 t   None       the truck and the stripe face one way
GTSRB_CLASS_NAMES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing over 3.5 t", "right-of-way at next intersection", "priority road", "yield", "stop",
    "no vehicles", "over 3.5 t prohibited", "no entry", "general caution", "dangerous curve left",
    "dangerous curve right", "double curve", "bumpy road", "slippery road", "road narrows on the right",
    "road work", "traffic signals", "pedestrians", "children crossing", "bicycles crossing",
    "beware of ice/snow", "wild animals crossing", "end of all limits", "turn right ahead", "turn left ahead",
    "ahead only", "go straight or right", "go straight or left", "keep right", "keep left",
    "roundabout mandatory", "end of no passing", "end of no passing over 3.5 t",
)
_MIRROR_PAIRS = ((19, 20), (33, 34), (36, 37), (38, 39))
_SYMMETRIC = (11, 12, 13, 15, 17, 18, 22, 26, 30, 35)
GTSRB_FLIP_MAP = tuple(
    next((b if c == a else a for a, b in _MIRROR_PAIRS if c in (a, b)), c if c in _SYMMETRIC else None)
    for c in range(43)
)


class GTSRB(VisionDataset):
    """German traffic signs: 39,209 (26,640 in the "fixed" release) train / 12,630 test images.

    Args:
        root: folder holding ``GTSRB/`` (the published zips extracted), or
            torchvision's ``root/gtsrb/GTSRB/`` layout (downloads go there).
        split: ``"train"`` or ``"test"`` (torchvision's argument).
        transform, target_transform: applied to the PIL RGB image / int label.
        download: fetch the zips torchvision uses (SHA-256 checked) and extract them.
        crop_roi: crop each image to its annotated sign (see the module notes).

    Attributes:
        samples (list of (path, label)), targets (list[int]), rois (list of
        (x1, y1, x2, y2)), classes (``"00000"`` .. ``"00042"``).
    """

    # Base URL tried in order (overridable, e.g. by tests with a local server).
    # Not reachable from minidl's development machines; tested on files made in the format.
    mirrors = ["https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"]
    # SHA-256 as torchvision lists them (prototype datasets/_builtin/gtsrb.py); its stable
    # API lists md5s 513f3c79a4c5141765e10e952eaa2478, c7e4e6327067d32654124b0fe9e82185,
    # fe31e9c9270bbcd7b84b7f21a9d9d9e5.
    resources = {
        "train": [("GTSRB-Training_fixed.zip", "df4144942083645bd60b594de348aa6930126c3e0e5de09e39611630abf8455a")],
        "test": [
            ("GTSRB_Final_Test_Images.zip", "48ba6fab7e877eb64eaf8de99035b0aaecfbc279bee23e35deca4ac1d0a837fa"),
            ("GTSRB_Final_Test_GT.zip", "f94e5a7614d75845c74c04ddb26b8796b9e483f43541dd95dd5b726504e16d6d"),
        ],
    }
    classes = [f"{i:05d}" for i in range(43)]
    flip_map = GTSRB_FLIP_MAP  # what a left-right mirror makes of each class (see the table above)

    def __init__(self, root, split="train", transform=None, target_transform=None, download=False,
                 crop_roi=False):
        if root is None:
            raise TypeError("GTSRB needs a root folder, got None")
        super().__init__(os.path.expanduser(os.fspath(root)), transform, target_transform)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.split = split
        self.crop_roi = bool(crop_roi)
        if download:
            self.download()
        rows = self._train_rows() if split == "train" else self._test_rows()
        if not rows:
            raise ValueError(f"GTSRB: no {split} images listed under {self.root}")
        self.samples = [(path, label) for path, _, label in rows]
        self.rois = [roi for _, roi, _ in rows]
        self.targets = [label for _, _, label in rows]
        bad = sorted({t for t in self.targets if not 0 <= t < len(self.classes)})
        if bad:
            raise ValueError(f"GTSRB: ClassId must lie in 0..{len(self.classes) - 1}, found {bad}")

    def _bases(self):
        # The published zips extracted into root, or torchvision's root/gtsrb/.
        return [self.root, os.path.join(self.root, "gtsrb")]

    def _train_folder(self):
        for base in self._bases():
            for sub in (("GTSRB", "Final_Training", "Images"), ("GTSRB", "Training")):
                folder = os.path.join(base, *sub)
                if os.path.isdir(folder):
                    return folder
        return None

    def _test_files(self):
        """Return ``(images folder, GT-final_test.csv)``, either possibly None."""
        images, gt = None, None
        for base in self._bases():
            folder = os.path.join(base, "GTSRB", "Final_Test", "Images")
            if images is None and os.path.isdir(folder):
                images = folder
            for candidate in (os.path.join(base, "GT-final_test.csv"), os.path.join(base, "GTSRB", "GT-final_test.csv"),
                              os.path.join(folder, "GT-final_test.csv")):
                if gt is None and os.path.isfile(candidate):
                    gt = candidate
        return images, gt

    def _train_rows(self):
        folder = self._train_folder()
        if folder is None:
            raise FileNotFoundError(
                f"GTSRB: no GTSRB/Final_Training/Images (or GTSRB/Training) folder under {self.root}; "
                "pass download=True, or extract GTSRB_Final_Training_Images.zip there"
            )
        rows = []
        for class_dir in sorted(d for d in os.listdir(folder) if d.isdigit()):
            path = os.path.join(folder, class_dir)
            gt = os.path.join(path, f"GT-{class_dir}.csv")
            if not os.path.isfile(gt):
                raise FileNotFoundError(f"GTSRB: {gt} is missing; the training archive was extracted incompletely")
            for filename, roi, label in _read_gt_csv(gt):
                rows.append((os.path.join(path, filename), roi, label))
        return rows

    def _test_rows(self):
        images, gt = self._test_files()
        if images is None or gt is None:
            missing = "GTSRB/Final_Test/Images" if images is None else "GT-final_test.csv"
            raise FileNotFoundError(
                f"GTSRB: {missing} not found under {self.root}; pass download=True, or extract "
                "GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip there"
            )
        return [(os.path.join(images, f), roi, label) for f, roi, label in _read_gt_csv(gt)]

    def download(self):
        """Fetch and extract the split's zips into ``root/gtsrb`` unless the data are present."""
        present = self._train_folder() if self.split == "train" else all(self._test_files())
        if present:
            return
        base = os.path.join(self.root, "gtsrb")
        for filename, sha256 in self.resources[self.split]:
            archive = download_from_mirrors(self.mirrors, filename, base, sha256)
            extract_archive(archive, base)

    def __len__(self):
        return len(self.samples)

    def _load(self, index):
        path, label = self.samples[index]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"GTSRB: {path} is listed in the ground-truth CSV but missing")
        with open(path, "rb") as f:
            image = Image.open(f).convert("RGB")
        if self.crop_roi:
            image = image.crop(self.rois[index])
        return image, label

    def extra_repr(self):
        return f"Split: {self.split}, crop_roi: {self.crop_roi}"
