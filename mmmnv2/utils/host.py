"""Which OpenMMLab host (MMDetection or MMSegmentation) a config belongs to."""
from mmengine.config import Config

HOSTS = ('mmdet', 'mmseg')


def setup_host(cfg: Config) -> str:
    """Return the config's host scope, checking it is one mmmnv2 serves."""
    scope = cfg.get('default_scope', None)
    if scope not in HOSTS:
        raise ValueError(f'default_scope of the config must be one of {HOSTS} (the host library), got {scope!r}')
    return scope
