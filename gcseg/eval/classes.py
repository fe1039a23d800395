"""Which GT instances exist in a class-agnostic evaluation (the `--gt-classes` modes).

A class-agnostic evaluator collapses every counted GT instance into one class; the class list only decides
which annotated groups are GT instances. Vertices whose label is outside the set are *void*: a prediction
lying on them is neither a true nor a false positive (ScanNet's `bool_void` rule).

Modes
-----
* ``synthetic``: every label >= 1 counts; label 0 (value < 1000) is void. gcseg's synthetic scenes.
* ``scannetv2_18``: the 18 NYU40 ids of the ScanNetV2 instance benchmark (no wall, floor)
  (ScanNet/ScanNet@3830fce ``BenchmarkScripts/3d_evaluation/evaluate_semantic_instance.py``).
* ``scannet200``: ``VALID_CLASS_IDS_200`` minus wall (1) and floor (3) = 198 instance classes
  (ScanNet/ScanNet@3830fce ``BenchmarkScripts/ScanNet200/scannet200_constants.py``).
  Head / common / tail: ``scannet200_splits.py`` (66 / 68 / 66 names; head loses wall and floor -> 64).
* ``scannetpp_84``: the 84 ScanNet++ instance benchmark classes by *name* (VinAIResearch/Open3DIS@4b05043
  ``open3dis/dataset/scannetpp.py::INSTANCE_BENCHMARK84_SCANNET_PP``). ScanNet++ GT stores
  ``semantic_index * 1000 + instance`` where ``semantic_index`` is the 0-based line of the dataset's
  ``metadata/semantic_classes.txt``: map names to ids with :func:`resolve_names` and that list at read time.

Label 0 can never be a GT class: ``0 * 1000 + instance < 1000`` is indistinguishable from void (the official
script files such values as "groups" and ignores them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from gcseg.errors import ConfigError

GtClassMode = Literal["synthetic", "scannet200", "scannetv2_18", "scannetpp_84"]
GT_CLASS_MODES: tuple[str, ...] = ("synthetic", "scannet200", "scannetv2_18", "scannetpp_84")

# NYU40 ids of the ScanNetV2 instance benchmark, with names (evaluate_semantic_instance.py).
SCANNETV2_18_CLASSES: tuple[tuple[int, str], ...] = (
    (3, 'cabinet'), (4, 'bed'), (5, 'chair'), (6, 'sofa'), (7, 'table'), (8, 'door'), (9, 'window'),
    (10, 'bookshelf'), (11, 'picture'), (12, 'counter'), (14, 'desk'), (16, 'curtain'), (24, 'refrigerator'),
    (28, 'shower curtain'), (33, 'toilet'), (34, 'sink'), (36, 'bathtub'), (39, 'otherfurniture'),
)

# ScanNet200 instance classes (id, name): VALID_CLASS_IDS_200 / CLASS_LABELS_200 without wall (1), floor (3).
SCANNET200_CLASSES: tuple[tuple[int, str], ...] = (
    (2, 'chair'), (4, 'table'), (5, 'door'), (6, 'couch'), (7, 'cabinet'), (8, 'shelf'), (9, 'desk'),
    (10, 'office chair'), (11, 'bed'), (13, 'pillow'), (14, 'sink'), (15, 'picture'), (16, 'window'), (17, 'toilet'),
    (18, 'bookshelf'), (19, 'monitor'), (21, 'curtain'), (22, 'book'), (23, 'armchair'), (24, 'coffee table'),
    (26, 'box'), (27, 'refrigerator'), (28, 'lamp'), (29, 'kitchen cabinet'), (31, 'towel'), (32, 'clothes'),
    (33, 'tv'), (34, 'nightstand'), (35, 'counter'), (36, 'dresser'), (38, 'stool'), (39, 'cushion'), (40, 'plant'),
    (41, 'ceiling'), (42, 'bathtub'), (44, 'end table'), (45, 'dining table'), (46, 'keyboard'), (47, 'bag'),
    (48, 'backpack'), (49, 'toilet paper'), (50, 'printer'), (51, 'tv stand'), (52, 'whiteboard'), (54, 'blanket'),
    (55, 'shower curtain'), (56, 'trash can'), (57, 'closet'), (58, 'stairs'), (59, 'microwave'), (62, 'stove'),
    (63, 'shoe'), (64, 'computer tower'), (65, 'bottle'), (66, 'bin'), (67, 'ottoman'), (68, 'bench'), (69, 'board'),
    (70, 'washing machine'), (71, 'mirror'), (72, 'copier'), (73, 'basket'), (74, 'sofa chair'),
    (75, 'file cabinet'), (76, 'fan'), (77, 'laptop'), (78, 'shower'), (79, 'paper'), (80, 'person'),
    (82, 'paper towel dispenser'), (84, 'oven'), (86, 'blinds'), (87, 'rack'), (88, 'plate'), (89, 'blackboard'),
    (90, 'piano'), (93, 'suitcase'), (95, 'rail'), (96, 'radiator'), (97, 'recycling bin'), (98, 'container'),
    (99, 'wardrobe'), (100, 'soap dispenser'), (101, 'telephone'), (102, 'bucket'), (103, 'clock'), (104, 'stand'),
    (105, 'light'), (106, 'laundry basket'), (107, 'pipe'), (110, 'clothes dryer'), (112, 'guitar'),
    (115, 'toilet paper holder'), (116, 'seat'), (118, 'speaker'), (120, 'column'), (121, 'bicycle'),
    (122, 'ladder'), (125, 'bathroom stall'), (128, 'shower wall'), (130, 'cup'), (131, 'jacket'),
    (132, 'storage bin'), (134, 'coffee maker'), (136, 'dishwasher'), (138, 'paper towel roll'), (139, 'machine'),
    (140, 'mat'), (141, 'windowsill'), (145, 'bar'), (148, 'toaster'), (154, 'bulletin board'),
    (155, 'ironing board'), (156, 'fireplace'), (157, 'soap dish'), (159, 'kitchen counter'), (161, 'doorframe'),
    (163, 'toilet paper dispenser'), (165, 'mini fridge'), (166, 'fire extinguisher'), (168, 'ball'), (169, 'hat'),
    (170, 'shower curtain rod'), (177, 'water cooler'), (180, 'paper cutter'), (185, 'tray'), (188, 'shower door'),
    (191, 'pillar'), (193, 'ledge'), (195, 'toaster oven'), (202, 'mouse'), (208, 'toilet seat cover dispenser'),
    (213, 'furniture'), (214, 'cart'), (221, 'storage container'), (229, 'scale'), (230, 'tissue box'),
    (232, 'light switch'), (233, 'crate'), (242, 'power outlet'), (250, 'decoration'), (261, 'sign'),
    (264, 'projector'), (276, 'closet door'), (283, 'vacuum cleaner'), (286, 'candle'), (300, 'plunger'),
    (304, 'stuffed animal'), (312, 'headphones'), (323, 'dish rack'), (325, 'broom'), (331, 'guitar case'),
    (342, 'range hood'), (356, 'dustpan'), (370, 'hair dryer'), (392, 'water bottle'), (395, 'handicap bar'),
    (399, 'purse'), (408, 'vent'), (417, 'shower floor'), (488, 'water pitcher'), (540, 'mailbox'), (562, 'bowl'),
    (570, 'paper bag'), (572, 'alarm clock'), (581, 'music stand'), (609, 'projector screen'), (748, 'divider'),
    (776, 'laundry detergent'), (1156, 'bathroom counter'), (1163, 'object'), (1164, 'bathroom vanity'),
    (1165, 'closet wall'), (1166, 'laundry hamper'), (1167, 'bathroom stall door'), (1168, 'ceiling light'),
    (1169, 'trash bin'), (1170, 'dumbbell'), (1171, 'stair rail'), (1172, 'tube'), (1173, 'bathroom cabinet'),
    (1174, 'cd case'), (1175, 'closet rod'), (1176, 'coffee kettle'), (1178, 'structure'), (1179, 'shower head'),
    (1180, 'keyboard piano'), (1181, 'case of water bottles'), (1182, 'coat rack'), (1183, 'storage organizer'),
    (1184, 'folded chair'), (1185, 'fire alarm'), (1186, 'power strip'), (1187, 'calendar'), (1188, 'poster'),
    (1189, 'potted plant'), (1190, 'luggage'), (1191, 'mattress'),
)

# Head / common / tail names (scannet200_splits.py; wall and floor dropped from head).
SCANNET200_HEAD: tuple[str, ...] = (
    'tv stand', 'curtain', 'blinds', 'shower curtain', 'bookshelf', 'tv', 'kitchen cabinet', 'pillow', 'lamp',
    'dresser', 'monitor', 'object', 'ceiling', 'board', 'stove', 'closet wall', 'couch', 'office chair',
    'kitchen counter', 'shower', 'closet', 'doorframe', 'sofa chair', 'mailbox', 'nightstand', 'washing machine',
    'picture', 'book', 'sink', 'recycling bin', 'table', 'backpack', 'shower wall', 'toilet', 'copier', 'counter',
    'stool', 'refrigerator', 'window', 'file cabinet', 'chair', 'plant', 'coffee table', 'stairs', 'armchair',
    'cabinet', 'bathroom vanity', 'bathroom stall', 'mirror', 'blackboard', 'trash can', 'stair rail', 'box',
    'towel', 'door', 'clothes', 'whiteboard', 'bed', 'bathtub', 'desk', 'wardrobe', 'clothes dryer', 'radiator',
    'shelf',
)
SCANNET200_COMMON: tuple[str, ...] = (
    'cushion', 'end table', 'dining table', 'keyboard', 'bag', 'toilet paper', 'printer', 'blanket', 'microwave',
    'shoe', 'computer tower', 'bottle', 'bin', 'ottoman', 'bench', 'basket', 'fan', 'laptop', 'person',
    'paper towel dispenser', 'oven', 'rack', 'piano', 'suitcase', 'rail', 'container', 'telephone', 'stand', 'light',
    'laundry basket', 'pipe', 'seat', 'column', 'bicycle', 'ladder', 'jacket', 'storage bin', 'coffee maker',
    'dishwasher', 'machine', 'mat', 'windowsill', 'bulletin board', 'fireplace', 'mini fridge', 'water cooler',
    'shower door', 'pillar', 'ledge', 'furniture', 'cart', 'decoration', 'closet door', 'vacuum cleaner',
    'dish rack', 'range hood', 'projector screen', 'divider', 'bathroom counter', 'laundry hamper',
    'bathroom stall door', 'ceiling light', 'trash bin', 'bathroom cabinet', 'structure', 'storage organizer',
    'potted plant', 'mattress',
)
SCANNET200_TAIL: tuple[str, ...] = (
    'paper', 'plate', 'soap dispenser', 'bucket', 'clock', 'guitar', 'toilet paper holder', 'speaker', 'cup',
    'paper towel roll', 'bar', 'toaster', 'ironing board', 'soap dish', 'toilet paper dispenser',
    'fire extinguisher', 'ball', 'hat', 'shower curtain rod', 'paper cutter', 'tray', 'toaster oven', 'mouse',
    'toilet seat cover dispenser', 'storage container', 'scale', 'tissue box', 'light switch', 'crate',
    'power outlet', 'sign', 'projector', 'candle', 'plunger', 'stuffed animal', 'headphones', 'broom', 'guitar case',
    'dustpan', 'hair dryer', 'water bottle', 'handicap bar', 'purse', 'vent', 'shower floor', 'water pitcher',
    'bowl', 'paper bag', 'alarm clock', 'music stand', 'laundry detergent', 'dumbbell', 'tube', 'cd case',
    'closet rod', 'coffee kettle', 'shower head', 'keyboard piano', 'case of water bottles', 'coat rack',
    'folded chair', 'fire alarm', 'power strip', 'calendar', 'poster', 'luggage',
)

# ScanNet++ 84 instance benchmark classes (Open3DIS INSTANCE_BENCHMARK84_SCANNET_PP).
SCANNETPP_84: tuple[str, ...] = (
    'table', 'door', 'ceiling lamp', 'cabinet', 'blinds', 'curtain', 'chair', 'storage cabinet', 'office chair',
    'bookshelf', 'whiteboard', 'window', 'box', 'monitor', 'shelf', 'heater', 'kitchen cabinet', 'sofa', 'bed',
    'trash can', 'book', 'plant', 'blanket', 'tv', 'computer tower', 'refrigerator', 'jacket', 'sink', 'bag',
    'picture', 'pillow', 'towel', 'suitcase', 'backpack', 'crate', 'keyboard', 'rack', 'toilet', 'printer', 'poster',
    'painting', 'microwave', 'shoes', 'socket', 'bottle', 'bucket', 'cushion', 'basket', 'shoe rack', 'telephone',
    'file folder', 'laptop', 'plant pot', 'exhaust fan', 'cup', 'coat hanger', 'light switch', 'speaker',
    'table lamp', 'kettle', 'smoke detector', 'container', 'power strip', 'slippers', 'paper bag', 'mouse',
    'cutting board', 'toilet paper', 'paper towel', 'pot', 'clock', 'pan', 'tap', 'jar', 'soap dispenser', 'binder',
    'bowl', 'tissue box', 'whiteboard eraser', 'toilet brush', 'spray bottle', 'headphones', 'stapler', 'marker',
)


def _names_to_ids(names: Sequence[str], table: Sequence[tuple[int, str]]) -> frozenset[int]:
    lookup = {n: i for i, n in table}
    return frozenset(lookup[n] for n in names)


SCANNETV2_18_IDS: frozenset[int] = frozenset(i for i, _ in SCANNETV2_18_CLASSES)
SCANNET200_IDS: frozenset[int] = frozenset(i for i, _ in SCANNET200_CLASSES)
SCANNET200_SUBSETS: dict[str, frozenset[int]] = {
    "head": _names_to_ids(SCANNET200_HEAD, SCANNET200_CLASSES),
    "common": _names_to_ids(SCANNET200_COMMON, SCANNET200_CLASSES),
    "tail": _names_to_ids(SCANNET200_TAIL, SCANNET200_CLASSES),
}


def resolve_names(names: Sequence[str], label_list: Sequence[str]) -> frozenset[int]:
    """Map class names to GT label ids = their 0-based index in the dataset's label list.

    ScanNet++ writes ``index(semantic_classes.txt) * 1000 + instance``; a name missing from the list or
    resolving to id 0 (indistinguishable from void) is a configuration error.
    """
    index = {n.strip(): i for i, n in enumerate(label_list)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConfigError(f"class name(s) {missing[:5]} not in the dataset's label list ({len(missing)} missing)",
                          fix="pass the dataset's metadata/semantic_classes.txt as the label list")
    ids = frozenset(index[n] for n in names)
    if 0 in ids:
        raise ConfigError("a GT class resolves to label id 0, which the *1000 encoding makes void",
                          fix="use a label list whose first entry is not an instance class")
    return ids


def valid_labels_for(mode: str, label_list: Sequence[str] | None = None) -> frozenset[int] | None:
    """The GT label ids that count in `mode`; None = every label >= 1 (``synthetic``)."""
    if mode == "synthetic":
        return None
    if mode == "scannetv2_18":
        return SCANNETV2_18_IDS
    if mode == "scannet200":
        return SCANNET200_IDS
    if mode == "scannetpp_84":
        if label_list is None:
            raise ConfigError("gt classes 'scannetpp_84' need the dataset's label list to map names to ids",
                              fix="pass --label-list <data>/metadata/semantic_classes.txt")
        return resolve_names(SCANNETPP_84, label_list)
    raise ConfigError(f"unknown GT class mode {mode!r}", fix=f"use one of {', '.join(GT_CLASS_MODES)}")


def subsets_for(mode: str) -> Mapping[str, frozenset[int]]:
    """Extra GT subsets reported next to the full set: head / common / tail for ScanNet200, else none."""
    return SCANNET200_SUBSETS if mode == "scannet200" else {}
