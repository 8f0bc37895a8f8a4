"""MMSegmentation's ``PascalVOCDataset`` with the checks of ``StrictSegDataset``."""
from typing import List

from mmseg.datasets import PascalVOCDataset

from mmmnv2.registry import DATASETS

from .data_checks import check_seg_data_list


@DATASETS.register_module()
class StrictPascalVOCDataset(PascalVOCDataset):
    """``PascalVOCDataset`` refusing a missing or empty split file, no images and (``check_files=True``) listed
    images or label maps that do not exist, with the file named."""

    def __init__(self, *args, check_files: bool = True, **kwargs) -> None:
        self.check_files = check_files
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        return check_seg_data_list(self, super().load_data_list)
