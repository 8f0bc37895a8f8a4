from .inference import check_model_file, find_images, inference, init_model, save_results

__all__ = ['check_model_file', 'find_images', 'inference', 'init_model', 'save_results']
