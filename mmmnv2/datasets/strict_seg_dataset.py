"""MMSegmentation's ``BaseSegDataset`` refusing, when it is built, a split file or folders that give no usable data."""
from typing import List

from mmseg.datasets import BaseSegDataset

from mmmnv2.registry import DATASETS

from .data_checks import check_seg_data_list


@DATASETS.register_module()
class StrictSegDataset(BaseSegDataset):
    """``BaseSegDataset`` with the checks of ``check_seg_data_list``: a missing or empty split file, no images,
    duplicate class names, and (``check_files=True``) listed images or label maps that do not exist are refused
    with the file named, instead of numpy's "need at least one array to concatenate" or a read error mid-training.
    """

    def __init__(self, *args, check_files: bool = True, **kwargs) -> None:
        self.check_files = check_files
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        return check_seg_data_list(self, super().load_data_list)
