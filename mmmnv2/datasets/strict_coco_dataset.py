"""A COCO dataset that refuses, when it is built, annotation data that would give wrong or meaningless results.

MMDetection's ``CocoDataset`` maps class names to category ids with ``coco.get_cat_ids(cat_names=classes)``: a class
missing from the file silently shifts every later label by one, and annotations of categories outside ``classes`` are
silently dropped. Either gives a wrong mAP with no warning. It also reads an empty file as a JSON error without the
file's name, finds missing images only when it first reads them (after training iterations), and evaluates a test
set without annotations as mAP -1; fields it needs that are missing, boxes it cannot use and annotations of unknown
images are dropped silently or fail as a bare ``KeyError`` (``coco_checks``). This subclass checks all of these when
the file is loaded and names the file.
"""
import json
import warnings
from typing import List

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO

from mmmnv2.registry import DATASETS

from .coco_checks import check_category_names, check_coco_fields, describe_invalid, invalid_annotations
from .data_checks import check_ann_file, check_files_exist, check_not_empty, check_unique_classes


@DATASETS.register_module()
class StrictCocoDataset(CocoDataset):
    """``CocoDataset`` whose annotation file must be valid and match ``metainfo['classes']``.

    Refused with the file named: a missing, empty or unparsable annotation file; a file without images; a missing
    "images", "annotations" or "categories" list or a field MMDetection reads (``file_name``, ``height``, ``width``,
    ``bbox``, ...); categories that do not match the classes one to one (names of several categories, classes
    without a category, and annotated categories outside the classes unless ``allow_unlisted_categories``, listed);
    annotations whose box is not finite, has a width or height <= 0 or leaves the image, or whose ``image_id`` is not
    an image (named by annotation id; ``drop_invalid_annotations`` drops them instead, printing how many); image files
    that do not exist (unless ``check_files=False``); a test set (``test_mode=True``) without a single annotation
    (unless ``allow_no_annotations``).

    Args:
        allow_unlisted_categories: Accept (and drop) annotations of categories not among the classes, to train on a
            subset of a file's categories on purpose (MMDetection's documented way of doing so).
        check_files: Check that every image file exists when the data set is built (one ``stat`` per image; turn it
            off for very large data sets on slow storage).
        allow_no_annotations: Accept a test set without annotations (e.g. COCO test-dev with ``format_only``).
        drop_invalid_annotations: Drop the annotations refused above for their box or image (noisy data), with a
            warning giving their number and the first few; the evaluator still reads the file as it is.
        **kwargs: ``CocoDataset`` arguments.
    """

    def __init__(self, *args, allow_unlisted_categories: bool = False, check_files: bool = True,
                 allow_no_annotations: bool = False, drop_invalid_annotations: bool = False, **kwargs) -> None:
        self.allow_unlisted_categories = allow_unlisted_categories
        self.drop_invalid_annotations = drop_invalid_annotations
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
        if self.test_mode and not self.allow_no_annotations and not any(d['instances'] for d in data_list):
            raise ValueError(f'{self.ann_file}: a test set without a single annotation; the evaluation would report '
                             f'mAP -1. Set allow_no_annotations=True to only write predictions (format_only).')
        if self.check_files:
            check_files_exist((d['img_path'] for d in data_list), self.ann_file)
        return data_list

    def COCOAPI(self, path: str) -> COCO:  # noqa: N802 (MMDetection's name: CocoDataset.load_data_list calls it)
        """The file loaded by MMDetection's COCO wrapper, checked (``coco_checks``) before MMDetection reads it."""
        coco = COCO(path)
        classes = tuple(self.metainfo['classes'])
        check_coco_fields(coco.dataset, self.ann_file)
        check_not_empty(coco.dataset['images'], self.ann_file, 'holds no images')
        check_category_names(coco.dataset, self.ann_file, classes, not self.allow_unlisted_categories)
        invalid = invalid_annotations(coco.dataset)
        if invalid and not self.drop_invalid_annotations:
            raise ValueError(f'{self.ann_file}: {len(invalid)} invalid annotation(s): {describe_invalid(invalid)} '
                             f'(drop_invalid_annotations=True drops them, saying how many)')
        if invalid:
            warnings.warn(f'{self.ann_file}: dropped {len(invalid)} invalid annotation(s) of '
                          f'{len(coco.dataset["annotations"])}: {describe_invalid(invalid)}', stacklevel=2)
            dropped = {annotation_id for annotation_id, _ in invalid}
            coco.dataset['annotations'] = [a for a in coco.dataset['annotations'] if a['id'] not in dropped]
            coco.createIndex()
        return coco
