"""Checks the strict datasets run when they are built, so bad data fails at once, naming the file.

Without them, an empty split file surfaces as numpy's "need at least one array to concatenate", a missing image as a
read error after training iterations, and a test set without annotations as an mAP of -1 with exit status 0.
"""
import os.path as osp
from collections import Counter
from typing import Callable, Iterable, List, Optional, Sequence

MAX_LISTED = 5


def check_ann_file(ann_file: str) -> None:
    """Refuse a missing or 0-byte annotation / split file."""
    if not ann_file:
        return
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file not found: {ann_file}')
    if osp.getsize(ann_file) == 0:
        raise ValueError(f'annotation file {ann_file} is empty (0 bytes)')


def check_unique_classes(classes: Sequence[str], source: str) -> None:
    duplicates = sorted(name for name, count in Counter(classes).items() if count > 1)
    if duplicates:
        raise ValueError(f'{source}: class names must be unique, {duplicates} appear more than once in '
                         f'{tuple(classes)}')


def check_not_empty(data_list: List[dict], source: str, what: str = 'no images') -> None:
    if not data_list:
        raise ValueError(f'{source}: {what}; a data set needs at least one image')


def check_files_exist(paths: Iterable[Optional[str]], source: str) -> None:
    """Refuse data whose listed files do not exist (named: the first few and how many)."""
    missing = [path for path in paths if path and not osp.isfile(path)]
    if missing:
        listed = ', '.join(missing[:MAX_LISTED]) + (f' and {len(missing) - MAX_LISTED} more' if len(missing) >
                                                    MAX_LISTED else '')
        raise FileNotFoundError(f'{source}: {len(missing)} listed files do not exist: {listed} (check data_root and '
                                f'data_prefix; check_files=False skips this check for very large data sets)')


def check_seg_data_list(dataset, load: Callable[[], List[dict]]) -> List[dict]:
    """Run an MMSegmentation data set's ``load_data_list`` (``load``) between the checks; return its list.

    ``dataset`` has ``ann_file``, ``data_prefix``, ``metainfo`` and ``check_files``.
    """
    source = dataset.ann_file or dataset.data_prefix.get('img_path', '')
    check_ann_file(dataset.ann_file)
    check_unique_classes(tuple(dataset.metainfo['classes']), f'metainfo of the data set of {source}')
    data_list = load()
    check_not_empty(data_list, source, 'lists no images' if dataset.ann_file else 'no images found')
    if dataset.check_files:
        check_files_exist((path for d in data_list for path in (d['img_path'], d.get('seg_map_path'))), source)
    return data_list
