"""Generate the embedded synthetic data sets the toy configs train on.

    python tools/misc/generate_toy_data.py [--out data] [--task det seg] [--num-train 512] [--num-val 32]

Writes ``<out>/toyshapes_det`` (COCO format, for configs/ssdlite/*toyshapes*) and ``<out>/toyshapes_seg``
(PASCAL VOC format, for configs/mobile_deeplabv3/*toyshapes*). The same arguments give identical files.
"""
import argparse
import os.path as osp

from mmmnv2.datasets import generate_detection, generate_segmentation

GENERATORS = {'det': ('toyshapes_det', generate_detection), 'seg': ('toyshapes_seg', generate_segmentation)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data', help='parent directory of the data sets')
    parser.add_argument('--task', nargs='+', choices=sorted(GENERATORS), default=sorted(GENERATORS))
    parser.add_argument('--num-train', type=int, default=512)
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--size', type=int, default=256, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    for task in args.task:
        folder, generate = GENERATORS[task]
        root = osp.join(args.out, folder)
        generate(root, num_train=args.num_train, num_val=args.num_val, size=args.size, seed=args.seed)
        print(f'{task}: {root}')


if __name__ == '__main__':
    main()
