from .inference import (
    MAX_PIXELS,
    ImageReadError,
    check_image_size,
    check_model_file,
    find_images,
    inference,
    init_model,
    output_files,
    save_result,
    save_results,
)

__all__ = ['MAX_PIXELS', 'ImageReadError', 'check_image_size', 'check_model_file', 'find_images', 'inference',
           'init_model', 'output_files', 'save_result', 'save_results']
