"""Checks of a COCO annotation file's content, run by ``StrictCocoDataset`` on the loaded file before MMDetection
reads it.

MMDetection's ``CocoDataset`` fails on a missing ``bbox``, ``file_name`` or ``categories`` with a bare ``KeyError``,
skips boxes whose width or height is below one pixel without a word (a training set of such boxes trains with loss 0),
clips boxes that leave the image, passes NaN coordinates on to the loss, never reads annotations whose ``image_id`` is
not an image, and maps classes to categories by name with pycocotools' ``getCatIds``, which accepts two categories
of the same name and then shifts every later label. These functions name the file and what is wrong.
"""
import math
from collections import Counter
from typing import Dict, List, Sequence, Tuple

MAX_LISTED = 5
# A box may leave its image by this much (pixels): COCO's own boxes do by rounding.
OUTSIDE_TOLERANCE = 1.0
REQUIRED = {'images': ('id', 'file_name', 'height', 'width'), 'annotations': ('id', 'image_id', 'category_id', 'bbox'),
            'categories': ('id', 'name')}


def _listed(items: Sequence) -> str:
    return ', '.join(map(str, items[:MAX_LISTED])) + (f' and {len(items) - MAX_LISTED} more'
                                                      if len(items) > MAX_LISTED else '')


def check_coco_fields(dataset: Dict, ann_file: str) -> None:
    """Raise ValueError naming ``ann_file`` if a section or a field MMDetection reads is missing."""
    for section, fields in REQUIRED.items():
        if not isinstance(dataset.get(section), list):
            raise ValueError(f'{ann_file}: no "{section}" list; a COCO annotation file needs "images", '
                             f'"annotations" and "categories"')
        for index, entry in enumerate(dataset[section]):
            missing = [field for field in fields if not isinstance(entry, dict) or field not in entry]
            if missing:
                which = entry.get('id', f'#{index}') if isinstance(entry, dict) else f'#{index}'
                raise ValueError(f'{ann_file}: {section[:-1]} {which} has no {", ".join(missing)}')


def check_category_names(dataset: Dict, ann_file: str, classes: Sequence[str], annotated_extras: bool) -> None:
    """Raise ValueError naming ``ann_file`` unless each class is the name of exactly one category.

    Lists the names given to several categories, the classes no category has, and (where ``annotated_extras``)
    the categories outside the classes that have annotations, whose annotations would be dropped silently.
    """
    names = Counter(category['name'] for category in dataset['categories'])
    duplicates = sorted(name for name in classes if names[name] > 1)
    missing = [name for name in classes if names[name] == 0]
    extra = []
    if annotated_extras:
        used = {annotation['category_id'] for annotation in dataset['annotations']}
        extra = [f'{category["name"]} (id {category["id"]})' for category in dataset['categories']
                 if category['name'] not in classes and category['id'] in used]
    if duplicates or missing or extra:
        found = [f'{category["id"]} {category["name"]!r}' for category in dataset['categories']]
        problems = [f'{what}: {items}' for what, items in (
            ('names of several categories', duplicates), ('classes without a category', missing),
            ('annotated categories that are not classes (allow_unlisted_categories=True drops them)', extra))
            if items]
        raise ValueError(f'{ann_file}: the categories [{", ".join(found)}] do not match the classes {tuple(classes)} '
                         f'one to one; ' + '; '.join(problems))


def invalid_annotations(dataset: Dict) -> List[Tuple[object, str]]:
    """(annotation id, reason) of each annotation whose image is unknown or whose box is not finite, has a width or
    height <= 0, or leaves its image (by more than ``OUTSIDE_TOLERANCE`` pixels)."""
    images = {image['id']: image for image in dataset['images']}
    invalid = []
    for annotation in dataset['annotations']:
        image = images.get(annotation['image_id'])
        box = annotation['bbox']
        if image is None:
            reason = f'image_id {annotation["image_id"]} is not an image of the file'
        elif not (isinstance(box, (list, tuple)) and len(box) == 4
                  and all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
            reason = f'bbox {box} is not 4 finite numbers'
        elif box[2] <= 0 or box[3] <= 0:
            reason = f'bbox {box} has a width or height <= 0'
        elif (box[0] < -OUTSIDE_TOLERANCE or box[1] < -OUTSIDE_TOLERANCE
              or box[0] + box[2] > image['width'] + OUTSIDE_TOLERANCE
              or box[1] + box[3] > image['height'] + OUTSIDE_TOLERANCE):
            reason = f'bbox {box} leaves its {image["width"]}x{image["height"]} image {image["id"]}'
        else:
            continue
        invalid.append((annotation['id'], reason))
    return invalid


def describe_invalid(invalid: List[Tuple[object, str]]) -> str:
    return _listed([f'annotation {annotation_id}: {reason}' for annotation_id, reason in invalid])
