"""Measuring the models: multiply-adds and parameters as the paper counts them, speed beside the hosts' peers, and
every deployment runtime against the machine's floor and LiteRT. The reports are written by
``tools/analysis_tools/benchmark.py``."""
from .benchmark import BenchmarkSettings, run_benchmark
from .complexity import count_macs, count_parameters, forward_macs, tta_area_factor
from .deploy_benchmark import DeploySettings, run_deploy_benchmark

__all__ = ['BenchmarkSettings', 'DeploySettings', 'count_macs', 'count_parameters', 'forward_macs', 'run_benchmark',
           'run_deploy_benchmark', 'tta_area_factor']
