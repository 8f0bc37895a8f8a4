"""Measuring the models: multiply-adds and parameters as the paper counts them, and speed beside the hosts' peers."""
from .benchmark import BenchmarkSettings, markdown_table, run_benchmark
from .complexity import count_macs, count_parameters, forward_macs, tta_area_factor

__all__ = ['BenchmarkSettings', 'count_macs', 'count_parameters', 'forward_macs', 'markdown_table', 'run_benchmark',
           'tta_area_factor']
