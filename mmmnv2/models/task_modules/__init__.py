from .ssdlite_anchor_generator import SSDLiteAnchorGenerator
from .tf_hard_example_miner import TFHardExampleMiner

__all__ = ['SSDLiteAnchorGenerator', 'TFHardExampleMiner']
