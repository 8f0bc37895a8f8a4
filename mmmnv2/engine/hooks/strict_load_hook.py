"""Refuse, before any weight is copied, a checkpoint that does not fit the model (MMEngine loads non-strictly)."""
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper

from mmmnv2.registry import HOOKS
from mmmnv2.utils.state_dict import check_checkpoint_fits


@HOOKS.register_module()
class StrictLoadHook(Hook):
    """Check ``load_from`` / resumed checkpoints against the runner's model when they are loaded.

    MMEngine's ``Runner.load_checkpoint`` and ``Runner.resume`` load with ``strict=False`` and only log the keys
    they skip, so a checkpoint of another model trains or evaluates on with random weights. This hook runs on
    ``after_load_checkpoint``, before the weights are copied, and raises ``CheckpointMismatchError`` with the
    missing, unexpected and mis-shaped keys.

    Args:
        partial: Allow partial loading (fine-tuning from a checkpoint of another head or class count): the keys
            that are skipped are printed as a table instead.
    """

    priority = 'VERY_LOW'  # after hooks that rewrite the loaded checkpoint (EMAHook)

    def __init__(self, partial: bool = False) -> None:
        self.partial = partial

    @staticmethod
    def add_to(cfg: Config, partial: bool = False) -> None:
        """Add the hook to ``cfg.custom_hooks`` (replacing one already there)."""
        hooks = [hook for hook in cfg.get('custom_hooks', None) or []
                 if hook.get('type') not in ('StrictLoadHook', 'mmmnv2.StrictLoadHook')]
        cfg.custom_hooks = hooks + [dict(type='mmmnv2.StrictLoadHook', partial=partial)]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):  # MMEngine loads into the inner model
            model = model.module
        name = getattr(runner, '_load_from', None) or 'the loaded checkpoint'
        check_checkpoint_fits(model, checkpoint, name, partial=self.partial)
