from .tf_sigmoid_classification_loss import TFSigmoidClassificationLoss

__all__ = ['TFSigmoidClassificationLoss']
