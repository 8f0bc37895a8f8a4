"""Configs without pretrained weights: for models whose weights come from a checkpoint, or stay random."""


def drop_pretrained(cfg: dict) -> None:
    """Remove every pretrained-weights setting from a model config, in place: nothing is downloaded."""
    if not isinstance(cfg, dict):
        if isinstance(cfg, list):
            for item in cfg:
                drop_pretrained(item)
        return
    if cfg.get('pretrained') is not None:
        cfg['pretrained'] = None
    init_cfg = cfg.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg['init_cfg'] = None
    elif isinstance(init_cfg, list):
        cfg['init_cfg'] = [c for c in init_cfg if c.get('type') != 'Pretrained']
    for value in cfg.values():
        drop_pretrained(value)
