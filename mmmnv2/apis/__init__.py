from .inference import (
    ImageReadError,
    check_model_file,
    find_images,
    inference,
    init_model,
    output_files,
    save_results,
)

__all__ = ['ImageReadError', 'check_model_file', 'find_images', 'inference', 'init_model', 'output_files',
           'save_results']
