"""A COCO dataset that refuses, when it is built, annotation data that would give wrong or meaningless results.

MMDetection's ``CocoDataset`` maps class names to category ids with ``coco.get_cat_ids(cat_names=classes)``: a class
missing from the file silently shifts every later label by one, and annotations of categories outside ``classes`` are
silently dropped. Either gives a wrong mAP with no warning. It also reads an empty file as a JSON error without the
file's name, finds missing images only when it first reads them (after training iterations), and evaluates a test
set without annotations as mAP -1. This subclass checks all of these when the file is loaded and names the file.
"""
import json
from typing import List

from mmdet.datasets import CocoDataset

from mmmnv2.registry import DATASETS

from .data_checks import check_ann_file, check_files_exist, check_not_empty, check_unique_classes


@DATASETS.register_module()
class StrictCocoDataset(CocoDataset):
    """``CocoDataset`` whose annotation file must be valid and match ``metainfo['classes']``.

    Refused with the file named: a missing, empty or unparsable annotation file; a file without images; classes
    that are not categories of the file, or category names that appear twice; annotations of categories outside the
    classes (unless ``allow_unlisted_categories``); image files that do not exist (unless ``check_files=False``);
    a test set (``test_mode=True``) without a single annotation (unless ``allow_no_annotations``).

    Args:
        allow_unlisted_categories: Accept (and drop) annotations of categories not among the classes, to train on a
            subset of a file's categories on purpose (MMDetection's documented way of doing so).
        check_files: Check that every image file exists when the data set is built (one ``stat`` per image; turn it
            off for very large data sets on slow storage).
        allow_no_annotations: Accept a test set without annotations (e.g. COCO test-dev with ``format_only``).
        **kwargs: ``CocoDataset`` arguments.
    """

    def __init__(self, *args, allow_unlisted_categories: bool = False, check_files: bool = True,
                 allow_no_annotations: bool = False, **kwargs) -> None:
        self.allow_unlisted_categories = allow_unlisted_categories
        self.check_files = check_files
        self.allow_no_annotations = allow_no_annotations
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        check_ann_file(self.ann_file)
        classes = tuple(self.metainfo['classes'])
        check_unique_classes(classes, f'metainfo of the data set of {self.ann_file}')
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as error:
            raise ValueError(f'{self.ann_file} is not a valid COCO JSON file ({error})') from None
        check_not_empty(data_list, self.ann_file, 'holds no images')
        if len(self.cat_ids) > len(classes):
            raise ValueError(f'{self.ann_file}: {len(self.cat_ids)} categories (ids {self.cat_ids}) are named as the '
                             f'{len(classes)} classes {classes}; category names must be unique')
        if len(self.cat_ids) != len(classes):
            raise ValueError(f'{self.ann_file}: only {len(self.cat_ids)} of the {len(classes)} classes {classes} are '
                             f'categories of this file; the labels would be shifted. Check the "categories" names.')
        annotated = {cat_id for cat_id, images in self.cat_img_map.items() if images}
        unlisted = sorted(annotated - set(self.cat_ids))
        if unlisted and not self.allow_unlisted_categories:
            raise ValueError(f'{self.ann_file}: has annotations of category ids {unlisted}, which are not among the '
                             f'classes {classes}; they would be dropped silently. Add them to the classes, or set '
                             f'allow_unlisted_categories=True to train on a subset on purpose.')
        if self.test_mode and not self.allow_no_annotations and not any(d['instances'] for d in data_list):
            raise ValueError(f'{self.ann_file}: a test set without a single annotation; the evaluation would report '
                             f'mAP -1. Set allow_no_annotations=True to only write predictions (format_only).')
        if self.check_files:
            check_files_exist((d['img_path'] for d in data_list), self.ann_file)
        return data_list
