"""A COCO dataset that refuses an annotation file whose categories do not match the configured classes.

MMDetection's ``CocoDataset`` maps class names to category ids with ``coco.get_cat_ids(cat_names=classes)``: a class
missing from the file silently shifts every later label by one, and annotations of categories outside ``classes`` are
silently dropped. Either gives a wrong mAP with no warning. This subclass checks both when the file is loaded and
names the file in the error. Set ``allow_unlisted_categories=True`` to train on a subset of a file's categories on
purpose (MMDetection's documented way of doing so).
"""
from typing import List

from mmdet.datasets import CocoDataset

from mmmnv2.registry import DATASETS


@DATASETS.register_module()
class StrictCocoDataset(CocoDataset):
    """``CocoDataset`` whose annotation categories must match ``metainfo['classes']``.

    Args:
        allow_unlisted_categories: Accept (and drop) annotations of categories not among the classes.
        **kwargs: ``CocoDataset`` arguments.
    """

    def __init__(self, *args, allow_unlisted_categories: bool = False, **kwargs) -> None:
        self.allow_unlisted_categories = allow_unlisted_categories
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        classes = tuple(self.metainfo['classes'])
        if len(self.cat_ids) != len(classes):
            raise ValueError(f'{self.ann_file}: only {len(self.cat_ids)} of the {len(classes)} classes {classes} are '
                             f'categories of this file; the labels would be shifted. Check the "categories" names.')
        annotated = {cat_id for cat_id, images in self.cat_img_map.items() if images}
        unlisted = sorted(annotated - set(self.cat_ids))
        if unlisted and not self.allow_unlisted_categories:
            raise ValueError(f'{self.ann_file}: has annotations of category ids {unlisted}, which are not among the '
                             f'classes {classes}; they would be dropped silently. Add them to the classes, or set '
                             f'allow_unlisted_categories=True to train on a subset on purpose.')
        return data_list
